package server

import (
	"net/http"
	"net/http/pprof"
)

// debugHandler is what the admin endpoint serves under /debug/: the Go
// runtime's profiles (net/http/pprof) under /debug/pprof/ when
// server.pprof is on, else nil. The admin handler puts it behind its
// loopback check and token; the public listener never serves it.
func (s *Server) debugHandler() http.Handler {
	if !s.cfg.Server.Pprof {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
