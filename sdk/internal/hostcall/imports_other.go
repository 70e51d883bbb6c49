//go:build !wasip1

package hostcall

import (
	"os"

	"github.com/toolgate/toolgate/sdk/abi"
)

// Outside WebAssembly there is no host unless a fake is installed with
// SetHost: log lines go to standard error and every other host function
// answers abi.StatusNotGranted with this message pending.
var noHost = []byte("no toolgate host: running natively without a fake host (use sdk/sdktest)")

func rawLog(_ int32, msg []byte) {
	line := append(append([]byte(nil), msg...), '\n')
	_, _ = os.Stderr.Write(line)
}

func rawResultRead(buf []byte) int32 {
	// The message of the last failed call is always the pending result.
	n := len(noHost)
	if n <= len(buf) {
		copy(buf, noHost)
	}
	return int32(n)
}

func rawHTTPRequest([]byte) int64              { return int64(abi.StatusNotGranted) }
func rawKVGet([]byte) int64                    { return int64(abi.StatusNotGranted) }
func rawKVPut(_, _ []byte, _ int64) int64      { return int64(abi.StatusNotGranted) }
func rawKVDelete([]byte) int64                 { return int64(abi.StatusNotGranted) }
func rawKVList([]byte) int64                   { return int64(abi.StatusNotGranted) }
func rawConfigGet([]byte) int64                { return int64(abi.StatusNotGranted) }
func rawSecretGet([]byte) int64                { return int64(abi.StatusNotGranted) }
func rawProgress(_, _ float64, _ []byte) int64 { return int64(abi.StatusNotGranted) }
func rawTools() int64                          { return int64(abi.StatusNotGranted) }
