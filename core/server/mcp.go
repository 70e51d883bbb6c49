package server

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/toolgate/toolgate/core/auth"
	"github.com/toolgate/toolgate/core/gate"
	"github.com/toolgate/toolgate/core/mcpserver"
)

// setupMCP builds the MCP endpoint over the plugin host: tools filtered and
// enforced per caller, audit records in the store. It is mounted on /mcp
// and /sse behind the bearer check by mountMCP.
func (s *Server) setupMCP() error {
	srv, err := mcpserver.New(mcpserver.Config{
		Host:              s.plugins,
		CallerFromContext: callerFromContext,
		HideDenied:        s.cfg.MCP.HideDenied,
		// The server's own middleware already refuses a Host outside
		// server.allowed_hosts (421) in front of every route.
		AllowedHosts:        []string{"*"},
		AllowedOrigins:      s.cfg.AllowedOrigins(),
		MaxRequestBodyBytes: s.cfg.Server.MaxBodyBytes,
		MaxHeaderBytes:      s.cfg.Server.MaxHeaderBytes,
		SessionIdleTimeout:  s.cfg.MCP.SessionIdleTimeout,
		MaxSessionsPerUser:  s.cfg.MCP.MaxSessionsPerUser,
		SessionIDPrefix:     sessionIDPrefix(s.cfg.Server.ReplicaID),
		ToolCallsPerMinute:  s.cfg.MCP.ToolCallsPerMinute,
		ToolCallBurst:       s.cfg.MCP.ToolCallBurst,
		Audit:               s.store,
		AuditRetention:      s.cfg.MCP.AuditRetention,
		Registerer:          s.reg,
		Logger:              s.log.With("component", "mcp"),
		Name:                "toolgate",
		Version:             moduleVersion(),
	})
	if err != nil {
		return fmt.Errorf("build the MCP endpoint: %w", err)
	}
	s.mcp = srv
	s.SetMCPHandler(srv.Handler(), srv.SSEHandler())
	return nil
}

// callerFromContext turns the caller the bearer check verified into the
// gate's view of it.
func callerFromContext(ctx context.Context) (gate.Caller, bool) {
	c, ok := auth.CallerFromContext(ctx)
	if !ok {
		return gate.Caller{}, false
	}
	return gate.Caller{
		UserID:         c.UserID,
		Email:          c.Email,
		OrganizationID: c.OrganizationID,
		Role:           c.Role,
		Permissions:    c.Permissions,
		ClientID:       c.ClientID,
		GrantID:        c.GrantID,
	}, true
}

// mcpGuard answers a disallowed Origin with 403 before the bearer check
// runs, as the MCP transport rules ask; without an MCP endpoint it passes.
func (s *Server) mcpGuard(next http.Handler) http.Handler {
	if s.mcp == nil {
		return next
	}
	return s.mcp.Guard(next)
}

// moduleVersion is the version MCP clients see in serverInfo.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
