package plugin

import (
	"testing"

	"github.com/toolgate/toolgate/core/store"
)

// TestSystemNamespaceIsNoPluginName pins what store.SystemNamespace relies
// on: no plugin can be named like toolgate's own key/value namespace, so no
// plugin can read or overwrite the replica registry.
func TestSystemNamespaceIsNoPluginName(t *testing.T) {
	if pluginNameRE.MatchString(store.SystemNamespace) {
		t.Fatalf("plugin names may be %q, the store's reserved system namespace", store.SystemNamespace)
	}
	if err := store.ValidatePluginKey(store.SystemNamespace, "replica/x"); err != nil {
		t.Fatalf("the store refuses its own system namespace: %v", err)
	}
}
