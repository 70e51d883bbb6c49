// Package metricsreg registers Prometheus collectors so that several
// instances of a component (two Hosts, two MCP servers in one test
// process) can share one registry: the second gets the first's collector.
package metricsreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg, or returns the identical collector
// registered before. Any other registration error is stored in *errp
// unless it already holds one, so a constructor can register many
// collectors and check once.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}
