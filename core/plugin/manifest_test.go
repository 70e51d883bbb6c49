package plugin

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
)

func validManifest() abi.Manifest {
	return abi.Manifest{
		ABI: abi.Version, Name: "weather", Version: "1.0.0",
		Tools: []abi.Tool{{Name: "forecast", Description: "Forecast.", InputSchema: json.RawMessage(`{"type":"object"}`)}},
	}
}

func TestValidateManifest(t *testing.T) {
	tests := []struct {
		name   string
		change func(*abi.Manifest)
		want   string
	}{
		{"valid", func(*abi.Manifest) {}, ""},
		{"abi", func(m *abi.Manifest) { m.ABI = 2 }, "manifest says ABI version 2, but this host speaks ABI version 1"},
		{"name", func(m *abi.Manifest) { m.Name = "Weather!" }, `manifest plugin name "Weather!"`},
		{"version", func(m *abi.Manifest) { m.Version = " " }, "manifest has no version"},
		{"no tools", func(m *abi.Manifest) { m.Tools = nil }, "manifest declares no tools"},
		{"too many tools", func(m *abi.Manifest) {
			for i := range abi.MaxToolsPerPlugin {
				m.Tools = append(m.Tools, abi.Tool{Name: "t" + strings.Repeat("x", i), Description: "d", InputSchema: json.RawMessage(`{"type":"object"}`)})
			}
		}, "over the limit of 128"},
		{"tool name chars", func(m *abi.Manifest) { m.Tools[0].Name = "get weather/now" }, `tool name "get weather/now" contains invalid characters: " ", "/"`},
		{"tool name length", func(m *abi.Manifest) { m.Tools[0].Name = strings.Repeat("a", 129) }, "exceeds maximum length of 128 characters (current: 129)"},
		{"duplicate tool", func(m *abi.Manifest) { m.Tools = append(m.Tools, m.Tools[0]) }, `tool "forecast" is declared twice`},
		{"description", func(m *abi.Manifest) { m.Tools[0].Description = "" }, `tool "forecast" has no description`},
		{"schema missing", func(m *abi.Manifest) { m.Tools[0].InputSchema = nil }, `tool "forecast" input_schema: missing`},
		{"schema type", func(m *abi.Manifest) { m.Tools[0].InputSchema = json.RawMessage(`{"type":"string"}`) }, `input_schema: type must be "object", not string`},
		{"schema not object", func(m *abi.Manifest) { m.Tools[0].InputSchema = json.RawMessage(`[]`) }, `input_schema: not a JSON object`},
		{"output schema", func(m *abi.Manifest) { m.Tools[0].OutputSchema = json.RawMessage(`{}`) }, `output_schema: type must be "object"`},
		{"empty permission", func(m *abi.Manifest) { m.Tools[0].Permissions = []string{""} }, "lists an empty permission"},
		{"bad http capability", func(m *abi.Manifest) { m.Capabilities.HTTP = []string{"ftp://x"} }, "capabilities: invalid http host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.change(&m)
			err := validateManifest(m)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckGrants(t *testing.T) {
	m := validManifest()
	m.Capabilities = abi.Capabilities{HTTP: []string{"api.weather.gov"}, Config: []string{"units"}, Progress: true}
	grant := func(s string) HostGrant {
		g, err := parseHostGrant(s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	full := PluginEntry{HTTP: []HostGrant{grant("api.weather.gov")}, Config: map[string]string{"units": "si"}, Progress: true}
	if err := checkGrants("weather", "plugins/dist/weather.wasm", "plugins.toml", m, full); err != nil {
		t.Fatal(err)
	}
	noHTTP := full
	noHTTP.HTTP = []HostGrant{grant("other.example")}
	err := checkGrants("weather", "plugins/dist/weather.wasm", "plugins.toml", m, noHTTP)
	want := `plugin "weather" (plugins/dist/weather.wasm) asks for http host "api.weather.gov", which is not granted; add  http = ["api.weather.gov"]  under [plugins.weather] in plugins.toml`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	noProgress := full
	noProgress.Progress = false
	if err := checkGrants("weather", "w.wasm", "plugins.toml", m, noProgress); err == nil || !strings.Contains(err.Error(), "asks for progress reporting, which is not granted; add  progress = true") {
		t.Fatalf("progress: %v", err)
	}
	noConfig := full
	noConfig.Config = nil
	if err := checkGrants("weather", "w.wasm", "plugins.toml", m, noConfig); err == nil || !strings.Contains(err.Error(), `asks for config value "units", which is not granted; add  config = { units = "..." }`) {
		t.Fatalf("config: %v", err)
	}
}

func TestToolsGrant(t *testing.T) {
	tests := []struct {
		name      string
		asks      bool
		listTools bool
		refused   bool
		granted   bool
	}{
		{"asked and granted", true, true, false, true},
		{"asked, not granted", true, false, true, false},
		{"granted, not asked", false, true, false, false},
		{"neither", false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			m.Capabilities.Tools = tt.asks
			e := PluginEntry{ListTools: tt.listTools}
			err := checkGrants("whoami", "plugins/dist/whoami.wasm", "plugins.toml", m, e)
			const want = `plugin "whoami" (plugins/dist/whoami.wasm) asks for the server's tool list, which is not granted; add  list_tools = true  under [plugins.whoami] in plugins.toml`
			if tt.refused && (err == nil || err.Error() != want) {
				t.Errorf("err = %v\nwant  %s", err, want)
			}
			if !tt.refused && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			if g := effectiveGrants(m, e); g.tools != tt.granted {
				t.Errorf("effective tools grant = %t, want %t", g.tools, tt.granted)
			}
		})
	}
}

func TestHostGranted(t *testing.T) {
	tests := []struct {
		asked  string
		grants []string
		want   bool
	}{
		{"api.example.com", []string{"api.example.com"}, true},
		{"api.example.com", []string{"http://api.example.com:8080"}, true},
		{"API.example.com", []string{"api.example.com"}, true},
		{"api.example.com", []string{"example.com"}, false},
		{"api.example.com:8443", []string{"api.example.com"}, false},
		{"api.example.com:8443", []string{"api.example.com:8443"}, true},
		{"http://api.example.com", []string{"api.example.com"}, false},
		{"http://api.example.com", []string{"http://api.example.com"}, true},
		{"[::1]:80", []string{"http://[::1]"}, true},
		{"bad host/", []string{"x"}, false},
	}
	for _, tt := range tests {
		var gs []HostGrant
		for _, g := range tt.grants {
			hg, err := parseHostGrant(g)
			if err != nil {
				t.Fatal(err)
			}
			gs = append(gs, hg)
		}
		if got := hostGranted(tt.asked, gs); got != tt.want {
			t.Errorf("hostGranted(%q, %v) = %v, want %v", tt.asked, tt.grants, got, tt.want)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	tests := map[string]bool{
		"93.184.216.34": true, "2606:4700::1111": true, "8.8.8.8": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "255.255.255.255": false,
		"::1": false, "fe80::1": false, "fc00::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"64:ff9b::a00:1": false, "2001:db8::1": false, "224.0.0.1": false, "198.18.0.1": false,
	}
	for addr, want := range tests {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"content":[{"type":"text","text":"hi"}]}`, ""},
		{`{"structured":{"a":1}}`, ""},
		{`{"error":{"code":"internal","message":"m"}}`, ""},
		{`{"content":[{"type":"video"}]}`, `unknown type "video"`},
		{`{"content":[{"type":"image"}]}`, "an image needs data and mime_type"},
		{`{"error":{"message":"m"}}`, "error without a code"},
		{`{"contents":[]}`, `unknown field "contents"`},
		{`{} {}`, "trailing data"},
		{`nope`, "invalid character"},
	}
	for _, tt := range tests {
		var cr abi.CallResult
		err := decodeResult([]byte(tt.in), &cr)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("decodeResult(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	good, _ := json.Marshal(validManifest())
	f.Add(good)
	f.Add([]byte(`{"abi":1,"name":"x","version":"1","tools":[{"name":"a b","description":"d","input_schema":{"type":"object"}}]}`))
	f.Add([]byte(`{"abi":1,"tools":[{"input_schema":[]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			return
		}
		if m.ABI != abi.Version || len(m.Tools) == 0 || len(m.Tools) > abi.MaxToolsPerPlugin {
			t.Fatalf("invalid manifest accepted: %+v", m)
		}
		for _, tool := range m.Tools {
			if validateToolName(tool.Name) != nil || checkObjectSchema(tool.InputSchema) != nil {
				t.Fatalf("invalid tool accepted: %+v", tool)
			}
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"content":[{"type":"text","text":"hi"}]}`))
	f.Add([]byte(`{"error":{"code":"internal","message":"m"}}`))
	f.Add([]byte(`{"content":[{"type":"image","data":"aGk=","mime_type":"image/png"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cr abi.CallResult
		if err := decodeResult(data, &cr); err != nil {
			return
		}
		for _, c := range cr.Content {
			if c.Type != abi.ContentText && c.Type != abi.ContentImage {
				t.Fatalf("content type %q accepted", c.Type)
			}
		}
	})
}
