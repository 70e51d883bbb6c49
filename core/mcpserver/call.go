package mcpserver

import (
	"context"
	"errors"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/gate"
	"github.com/toolgate/toolgate/core/plugin"
	"github.com/toolgate/toolgate/core/store"
	"github.com/toolgate/toolgate/sdk/abi"
)

// Outcomes of a call, as audit records and metrics name them. A plugin
// failure's outcome is its plugin.ErrorKind ("timeout", "trap", ...).
const (
	outcomeOK        = "ok"
	outcomeToolError = "tool_error"
	outcomeDenied    = "denied"
	outcomeInternal  = "internal"
)

// progressBuffer is how many progress reports may wait for the client
// before newer ones are dropped (progress is advisory; the plugin must
// never block on a slow client).
const progressBuffer = 16

// toolHandler returns the go-sdk handler of the tool name: it re-checks
// the caller against the tool's current rules, runs the call on the plugin
// host and turns the outcome into an MCP result. Plugin failures are tool
// errors (IsError), never protocol errors; so is a call over the caller's
// ToolCallsPerMinute budget, which never reaches the plugin. Only allowed
// calls spend the budget, so a hidden tool stays indistinguishable from an
// unknown one.
func (s *Server) toolHandler(name string) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s.calls.begin()
		defer s.calls.end()
		start := time.Now()
		c, _ := s.identify(req)
		if c == nil {
			return nil, errNoCaller
		}
		e, ok := s.tools.Load().byName[name]
		if !ok {
			return nil, unknownTool(name)
		}
		rec := store.AuditRecord{
			Time:           s.cfg.Now(),
			UserID:         c.UserID,
			Email:          c.Email,
			OrganizationID: c.OrganizationID,
			ClientID:       c.ClientID,
			Plugin:         e.tool.Plugin,
			Tool:           name,
		}
		if d := gate.Decide(e.tool.Rules, *c); !d.Allowed {
			rec.Decision, rec.Outcome = "deny", outcomeDenied
			rec.Duration = time.Since(start)
			s.finish(ctx, rec)
			if s.cfg.HideDenied {
				return nil, unknownTool(name)
			}
			return errorResult(d.Message(name)), nil
		}
		rec.Decision = "allow"
		if s.limiter != nil {
			if ok, wait := s.limiter.Allow(c.UserID); !ok {
				rec.Outcome, rec.ErrorKind = outcomeRateLimited, outcomeRateLimited
				rec.Duration = time.Since(start)
				s.finish(ctx, rec)
				return errorResult(rateLimitedMessage(name, wait)), nil
			}
		}
		caller := *c
		opts := plugin.CallOptions{
			CallID: store.NewID(),
			Tools:  func() []abi.ToolAccess { return gate.ToolAccess(s.cfg.Host.Tools(), caller) },
		}
		var progressDone chan struct{}
		var progress chan plugin.Progress
		if tok := req.Params.GetProgressToken(); tok != nil && req.Session != nil {
			progress = make(chan plugin.Progress, progressBuffer)
			progressDone = make(chan struct{})
			go func() {
				defer close(progressDone)
				for p := range progress {
					total := p.Total
					if total < 0 {
						total = 0
					}
					if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
						ProgressToken: tok, Progress: p.Progress, Total: total, Message: p.Message,
					}); err != nil && ctx.Err() == nil {
						s.log.Debug("mcpserver: progress notification not sent", "tool", name, "err", err)
					}
				}
			}()
			opts.Progress = func(p plugin.Progress) {
				select {
				case progress <- p:
				default:
				}
			}
		}
		res, err := s.cfg.Host.Call(ctx, name, req.Params.Arguments, caller.ABI(), opts)
		if progress != nil {
			close(progress)
			<-progressDone
		}
		rec.Duration = time.Since(start)
		out := s.result(name, res, err, &rec)
		s.finish(ctx, rec)
		return out, nil
	}
}

// result turns a plugin call's outcome into an MCP result and fills in
// the audit record's outcome.
func (s *Server) result(name string, res abi.CallResult, err error, rec *store.AuditRecord) *mcp.CallToolResult {
	if err != nil {
		var pe *plugin.Error
		if !errors.As(err, &pe) {
			s.log.Error("mcpserver: tool call failed", "tool", name, "err", err)
			rec.Outcome, rec.ErrorKind = outcomeInternal, outcomeInternal
			return errorResult(name + ": the call failed inside the server")
		}
		rec.Outcome, rec.ErrorKind = string(pe.Kind), string(pe.Kind)
		return errorResult(pe.Error())
	}
	if res.Error != nil {
		rec.Outcome, rec.ErrorKind = string(plugin.ErrKindGuest), string(plugin.ErrKindGuest)
		return errorResult(name + ": " + res.Error.Message)
	}
	out := &mcp.CallToolResult{IsError: res.IsError, Content: make([]mcp.Content, 0, len(res.Content))}
	for _, c := range res.Content {
		switch c.Type {
		case abi.ContentImage:
			out.Content = append(out.Content, &mcp.ImageContent{Data: c.Data, MIMEType: c.MimeType})
		case abi.ContentText:
			out.Content = append(out.Content, &mcp.TextContent{Text: c.Text})
		default:
			// The host validates content types; a new one the server does
			// not know yet is named rather than dropped silently.
			out.Content = append(out.Content, &mcp.TextContent{Text: "[content of type " + c.Type + " omitted]"})
		}
	}
	if len(res.Structured) > 0 {
		out.StructuredContent = res.Structured
	}
	if res.IsError {
		rec.Outcome = outcomeToolError
	} else {
		rec.Outcome = outcomeOK
	}
	return out
}

// finish records a call or denial in the audit trail and the metrics.
func (s *Server) finish(ctx context.Context, rec store.AuditRecord) {
	s.metrics.observe(rec.Tool, rec.Outcome, rec.Duration)
	s.audit.record(ctx, rec)
}

// errorResult is a tool error with one text block.
func errorResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}
