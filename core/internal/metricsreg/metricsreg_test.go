package metricsreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	var err error
	first := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	second := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}), &err)
	if err != nil {
		t.Fatalf("registering the same metric twice: %v", err)
	}
	if first != second {
		t.Error("the second registration did not return the first collector")
	}
	// A clash that is not the same metric is an error, kept in err.
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other help"}), &err)
	if err == nil {
		t.Error("a conflicting collector registered without an error")
	}
	kept := err
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "third"}), &err)
	if err != kept {
		t.Errorf("err = %v, want the first error kept", err)
	}
}
