package mcpserver

import (
	"crypto/rand"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/toolgate/toolgate/core/gate"
)

// Keys of the go-sdk TokenInfo.Extra the transports set.
const (
	extraCaller   = "toolgate.mcpserver.caller"   // *gate.Caller
	extraStateful = "toolgate.mcpserver.stateful" // bool: a session outlives the request
)

// identify returns the caller of a request and, for a stateful or SSE
// session, the session's record (nil for stateless requests).
func (s *Server) identify(req mcp.Request) (*gate.Caller, *session) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil {
		c, _ := extra.TokenInfo.Extra[extraCaller].(*gate.Caller)
		if c == nil {
			return nil, nil
		}
		if stateful, _ := extra.TokenInfo.Extra[extraStateful].(bool); !stateful || ss == nil {
			return c, nil
		}
		return c, s.track(ss, *c)
	}
	// SSE: messages reach the session without their HTTP request; the
	// caller is the session's, refreshed by every POST.
	if ss == nil {
		return nil, nil
	}
	st := s.sessionOf(ss)
	if st == nil {
		return nil, nil
	}
	st.mu.Lock()
	c := st.caller
	st.mu.Unlock()
	return &c, st
}

// track records the caller of a stateful streamable session, creating the
// record on the session's first request. When the caller's rules-relevant
// identity changed (new permissions after a token refresh) so that the
// tools it may see changed, the session is told the list changed.
func (s *Server) track(ss *mcp.ServerSession, c gate.Caller) *session {
	if st := s.sessionOf(ss); st != nil {
		s.updateCaller(st, c)
		return st
	}
	st := &session{grant: grantKey(c), user: c.UserID, caller: c, ss: ss, evictable: true}
	if prev := s.addSession(ss, st); prev != nil {
		s.updateCaller(prev, c) // a concurrent first request won
		return prev
	}
	go func() {
		_ = ss.Wait()
		s.forget(ss)
	}()
	return st
}

// addSession remembers st for ss unless ss has a record already, which it
// returns.
//
// An evictable session beyond the user's MaxSessionsPerUser closes the
// user's oldest one, so a client that reconnects without ending its
// sessions cannot pile them up until the idle timeout.
func (s *Server) addSession(ss *mcp.ServerSession, st *session) *session {
	s.sessMu.Lock()
	if prev := s.sessions[ss]; prev != nil {
		s.sessMu.Unlock()
		return prev
	}
	if gone := s.evicted[ss]; gone != nil {
		// A request that was already under way when the session was
		// evicted: it must not bring the session back (it would count
		// again and evict the user's next session).
		s.sessMu.Unlock()
		return gone
	}
	s.seq++
	st.seq = s.seq
	s.sessions[ss] = st
	addTo(s.byGrant, st.grant, st)
	var evict *session
	if st.evictable {
		addTo(s.byUser, st.user, st)
		if mine := s.byUser[st.user]; len(mine) > s.cfg.MaxSessionsPerUser {
			for p := range mine {
				if evict == nil || p.seq < evict.seq {
					evict = p
				}
			}
		}
	}
	if evict != nil {
		s.forgetLocked(evict.ss)
		s.evicted[evict.ss] = evict // until the session's Wait returns
	}
	s.sessMu.Unlock()
	if evict != nil {
		s.log.Info("mcpserver: closing the oldest session of a user over the session limit", "user", st.user, "limit", s.cfg.MaxSessionsPerUser)
		_ = evict.ss.Close()
	}
	return nil
}

func addTo(m map[string]map[*session]struct{}, key string, st *session) {
	set := m[key]
	if set == nil {
		set = map[*session]struct{}{}
		m[key] = set
	}
	set[st] = struct{}{}
}

func removeFrom(m map[string]map[*session]struct{}, key string, st *session) {
	if set := m[key]; set != nil {
		delete(set, st)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

func (s *Server) sessionOf(ss *mcp.ServerSession) *session {
	if ss == nil {
		return nil
	}
	s.sessMu.RLock()
	defer s.sessMu.RUnlock()
	return s.sessions[ss]
}

// grantKey identifies the grant a caller's token belongs to: a refreshed
// token keeps it, so every session opened under the grant learns about
// new permissions from whichever request brings them first.
func grantKey(c gate.Caller) string {
	if c.GrantID != "" {
		return c.GrantID
	}
	return c.UserID + "\x00" + c.ClientID
}

// refreshGrant hands caller c, just seen on a request, to the other
// sessions of its grant whose caller differs for the rules (a 2026-07-28
// listen stream, or a session whose own requests have not come back since
// the token was refreshed). self is the request's own session, if any.
func (s *Server) refreshGrant(c gate.Caller, self *session) {
	key := grantKey(c)
	s.sessMu.RLock()
	peers := s.byGrant[key]
	if len(peers) == 0 || (len(peers) == 1 && self != nil) {
		s.sessMu.RUnlock()
		return
	}
	stale := make([]*session, 0, len(peers))
	for p := range peers {
		if p == self {
			continue
		}
		p.mu.Lock()
		same := sameRulesIdentity(p.caller, c) && p.caller.UserID == c.UserID
		p.mu.Unlock()
		if !same {
			stale = append(stale, p)
		}
	}
	s.sessMu.RUnlock()
	for _, p := range stale {
		s.updateCaller(p, c)
	}
}

// updateCaller stores c as the session's caller and, when the tools it may
// see differ from what the client last learned, sends it
// notifications/tools/list_changed.
func (s *Server) updateCaller(st *session, c gate.Caller) {
	st.mu.Lock()
	changed := !sameRulesIdentity(st.caller, c)
	st.caller = c
	stale := changed && st.hasTol && st.told != fingerprint(s.tools.Load(), c)
	st.mu.Unlock()
	if stale {
		s.touch()
	}
}

func (s *Server) forget(ss *mcp.ServerSession) {
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	s.forgetLocked(ss)
	delete(s.evicted, ss) // the session is over: its requests are done
}

// forgetLocked is forget with s.sessMu held.
func (s *Server) forgetLocked(ss *mcp.ServerSession) {
	st := s.sessions[ss]
	if st == nil {
		return
	}
	delete(s.sessions, ss)
	removeFrom(s.byGrant, st.grant, st)
	if st.evictable {
		removeFrom(s.byUser, st.user, st)
	}
}

// newSessionID returns a fresh session ID: Config.SessionIDPrefix, then
// 130 random bits (26 base32 characters, as the go-sdk's own IDs).
func (s *Server) newSessionID() string {
	return s.cfg.SessionIDPrefix + rand.Text()
}
