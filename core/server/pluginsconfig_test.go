package server

import (
	"testing"
	"time"
)

// plugins.idle_instance_ttl reaches the plugin host: 0 means "keep idle
// instances", which the host spells as a negative TTL (its zero is the
// default).
func TestIdleInstanceTTLWiring(t *testing.T) {
	tests := []struct {
		in, want time.Duration
	}{
		{0, -1},
		{time.Second, time.Second},
		{30 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := idleInstanceTTL(tt.in); got != tt.want {
			t.Errorf("idleInstanceTTL(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
