package authkit

import (
	"testing"
	"time"
)

// TestPermissionsCacheForget: ForgetPermissions drops every cached answer;
// a lookup that was in flight when it ran still answers its callers but is
// not cached, and does not disturb a lookup started after it.
func TestPermissionsCacheForget(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newPermCache(time.Hour, 10, func() time.Time { return now })
	cached := permKey{userID: "u1", organizationID: "o"}
	inFlight := permKey{userID: "u2", organizationID: "o"}
	res := permResult{role: "admin", permissions: []string{"p"}}

	j, _, _ := c.lookup(cached)
	c.finish(cached, j.flight, res, nil)
	if _, _, ok := c.lookup(cached); !ok {
		t.Fatal("a finished lookup was not cached")
	}
	old, _, _ := c.lookup(inFlight)
	if !old.leader {
		t.Fatal("first lookup is not the leader")
	}

	(&Upstream{perms: c}).ForgetPermissions()
	if j, _, ok := c.lookup(cached); ok || !j.leader {
		t.Errorf("after ForgetPermissions: cached %v, leader %v; want a fresh lookup", ok, j.leader)
	}
	fresh, _, _ := c.lookup(inFlight)
	if !fresh.leader || fresh.flight == old.flight {
		t.Fatal("a lookup after ForgetPermissions joined the flight started before it")
	}
	c.finish(inFlight, old.flight, res, nil) // the old flight lands: answered, not cached
	<-old.flight.done
	if j, _, ok := c.lookup(inFlight); ok || j.leader || j.flight != fresh.flight {
		t.Errorf("after the old flight landed: cached %v, leader %v, same flight %v; want to join the fresh flight", ok, j.leader, j.flight == fresh.flight)
	}
	c.finish(inFlight, fresh.flight, res, nil)
	if _, _, ok := c.lookup(inFlight); !ok {
		t.Error("the fresh flight's answer was not cached")
	}
}
