// Package plugin is toolgate's WebAssembly plugin host: it loads the
// plugins listed in plugins.toml and dropped into the drop-in folder,
// verifies them (sha256 pin, ABI version, manifest, granted capabilities),
// compiles them once through a directory-backed wazero compilation cache,
// runs tool calls on pools of warm instances under memory, time and output
// limits, provides the host functions of sdk/abi (module "toolgate/v1") with
// deny-by-default grants, and swaps the plugin set atomically when the
// drop-in folder or plugins.toml changes.
//
// # Lifecycle
//
// New loads the initial set (all or nothing) and, with Config.Watch, starts
// watching the drop-in folder. Host.Reload rebuilds the set from
// plugins.toml and the folder; the new set is loaded completely before it
// replaces the old one, calls in flight finish on the old set, and the old
// set is closed when its last call returns. A failed reload leaves the old
// set serving. Host.Subscribe tells the MCP layer when the set changed.
// Host.Close stops the watcher, waits for calls in flight and closes every
// instance.
//
// # Calls
//
// Host.Call runs one tool call on a warm instance of the plugin serving the
// tool (or a fresh one with isolation = "per-call"). Any trap, timeout or
// limit breach discards the instance; the next call gets a new one. At
// most pool_size calls of one plugin run at once; the rest wait in a queue
// bounded by Config.MaxQueue and Config.QueueTimeout, beyond which a call
// fails at once with ErrKindBusy ("busy ...; try again"). Plugin
// failures are returned as *Error with an ErrorKind, whose message is meant
// for the client.
//
// See README.md for the plugins.toml schema.
package plugin
