package gate_test

import (
	"fmt"

	"github.com/toolgate/toolgate/core/gate"
	"github.com/toolgate/toolgate/core/plugin"
)

func ExampleDecide() {
	rules := plugin.Rules{Permissions: []string{"image_generation"}}
	alice := gate.Caller{UserID: "user_alice", Permissions: []string{"image_generation"}}
	bob := gate.Caller{UserID: "user_bob"}

	fmt.Println(gate.Decide(rules, alice).Allowed)
	d := gate.Decide(rules, bob)
	fmt.Println(d.Allowed, d.Missing)
	fmt.Println(d.Message("generateImage"))
	fmt.Println(gate.Decide(plugin.Rules{Roles: []string{"admin"}}, gate.Caller{Role: "member"}).Message("deploy"))
	fmt.Println(gate.Decide(plugin.Rules{Organizations: []string{"org_acme"}}, gate.Caller{OrganizationID: "org_other"}).Message("billing"))
	// Output:
	// true
	// false permission image_generation
	// generateImage needs permission image_generation; you have none
	// deploy needs role admin; you have member
	// billing is not available to your organization
}
