package devauthkit

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
)

func FuzzParseAuthenticateRequest(f *testing.F) {
	f.Add("application/json", []byte(`{"client_id":"c","client_secret":"s","grant_type":"authorization_code","code":"x","code_verifier":"v"}`))
	f.Add("application/json; charset=utf-8", []byte(`{"grant_type":"refresh_token","refresh_token":"r","organization_id":"org_1"}`))
	f.Add("application/json", []byte(`{"grant_type":1}`))
	f.Add("application/json", []byte(`{} {}`))
	f.Add("application/x-www-form-urlencoded", []byte("client_id=c&grant_type=refresh_token&refresh_token=r"))
	f.Add("application/x-www-form-urlencoded", []byte("code=a&code=b"))
	f.Add("application/x-www-form-urlencoded", []byte("%zz"))
	f.Add("text/plain", []byte("hello"))
	f.Add(";;", []byte(""))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, aerr := parseAuthenticateRequest(contentType, body)
		if aerr != nil {
			if aerr.status != http.StatusBadRequest || aerr.Error != "invalid_request" {
				t.Fatalf("parse error %+v is not a 400 invalid_request", aerr)
			}
			return
		}
		// What was parsed is what the body says.
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			t.Fatalf("parsed a body with an invalid content type %q", contentType)
		}
		var want authenticateRequest
		switch mt {
		case "application/json":
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatalf("parsed JSON that encoding/json rejects: %v", err)
			}
		case "application/x-www-form-urlencoded":
			v, err := url.ParseQuery(string(body))
			if err != nil {
				t.Fatalf("parsed a form that url.ParseQuery rejects: %v", err)
			}
			want = authenticateRequest{
				ClientID: v.Get("client_id"), ClientSecret: v.Get("client_secret"), GrantType: v.Get("grant_type"),
				Code: v.Get("code"), CodeVerifier: v.Get("code_verifier"), RefreshToken: v.Get("refresh_token"),
				OrganizationID: v.Get("organization_id"), IPAddress: v.Get("ip_address"), UserAgent: v.Get("user_agent"),
			}
		default:
			t.Fatalf("parsed a body of content type %q", mt)
		}
		if req != want {
			t.Fatalf("parsed %+v, want %+v", req, want)
		}
	})
}

// FuzzAuthenticateEndpoint sends arbitrary bodies through the whole handler:
// it must answer with JSON and never 5xx.
func FuzzAuthenticateEndpoint(f *testing.F) {
	s := newTestServer(f, nil)
	f.Add("application/json", []byte(`{"client_id":"`+s.ClientID()+`","client_secret":"`+s.APIKey()+`","grant_type":"authorization_code","code":"x","code_verifier":"v"}`))
	f.Add("application/json", []byte(`{"client_id":"`+s.ClientID()+`","client_secret":"`+s.APIKey()+`","grant_type":"refresh_token","refresh_token":"r"}`))
	f.Add("application/x-www-form-urlencoded", []byte("client_id="+s.ClientID()+"&client_secret="+s.APIKey()+"&grant_type=magic"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/user_management/authenticate", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := do(s, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q %q", rec.Code, contentType, body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
	})
}

func FuzzParseMembershipQuery(f *testing.F) {
	f.Add("user_id=user_1&organization_id=org_1&statuses=active&limit=10&order=desc")
	f.Add("statuses[]=active&statuses=inactive,pending&limit=100&order=normal")
	f.Add("after=om_1&before=om_2")
	f.Add("limit=0")
	f.Add("limit=-1&order=sideways")
	f.Add("statuses=active,,active")
	f.Add("user_id=a&user_id=b")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		mq, aerr := parseMembershipQuery(q)
		if aerr != nil {
			if aerr.status != http.StatusUnprocessableEntity || aerr.Code != "invalid_request_parameters" || aerr.Message == "" {
				t.Fatalf("parse error %+v is not a 422 invalid_request_parameters", aerr)
			}
			return
		}
		if mq.limit < 1 || mq.limit > maxListLimit {
			t.Fatalf("limit %d accepted", mq.limit)
		}
		if l := q.Get("limit"); l != "" {
			if n, err := strconv.Atoi(l); err != nil || n != mq.limit {
				t.Fatalf("limit %q parsed as %d", l, mq.limit)
			}
		} else if mq.limit != defaultListLimit {
			t.Fatalf("default limit %d", mq.limit)
		}
		if mq.before != "" && mq.after != "" {
			t.Fatal("both cursors accepted")
		}
		if mq.userID != q.Get("user_id") || mq.organizationID != q.Get("organization_id") {
			t.Fatalf("filters %q, %q from %q", mq.userID, mq.organizationID, rawQuery)
		}
		for i, st := range mq.statuses {
			if !slices.Contains(membershipStatuses, st) || slices.Contains(mq.statuses[:i], st) {
				t.Fatalf("statuses %q accepted", mq.statuses)
			}
		}
		if mq.desc != (q.Get("order") == "desc") {
			t.Fatalf("order %q parsed as desc=%v", q.Get("order"), mq.desc)
		}
	})
}

// FuzzOrganizationEndpoints sends arbitrary queries and organization ids
// through the list handlers: they must answer with JSON and never 5xx.
func FuzzOrganizationEndpoints(f *testing.F) {
	s := newTestServer(f, nil)
	userID, orgID, _ := s.IDs("alice@example.com")
	f.Add("user_id="+userID+"&organization_id="+orgID+"&statuses=active&limit=10&order=desc", orgID)
	f.Add("organization_id="+orgID+"&limit=1&after=om_x", "org_unknown")
	f.Add("before=om_1&limit=2", "%2F..%2F")
	f.Fuzz(func(t *testing.T, rawQuery, org string) {
		for _, target := range []string{
			"/user_management/organization_memberships?" + rawQuery,
			"/organizations/" + url.PathEscape(org) + "/roles?" + rawQuery,
		} {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			u, err := url.Parse(target)
			if err != nil {
				continue
			}
			req.URL, req.RequestURI = u, target
			req.Header.Set("Authorization", "Bearer "+s.APIKey())
			rec := do(s, req)
			if rec.Code >= 500 {
				t.Fatalf("status %d for %q", rec.Code, target)
			}
			// The mux's own redirects (path cleaning) and 404s are not JSON;
			// everything the handlers answer is.
			if rec.Code == http.StatusOK || rec.Code == http.StatusUnauthorized || rec.Code == http.StatusUnprocessableEntity {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Fatalf("content type %q for %q (status %d)", ct, target, rec.Code)
				}
			}
			if !json.Valid(rec.Body.Bytes()) && rec.Header().Get("Content-Type") == "application/json; charset=utf-8" {
				t.Fatalf("invalid JSON for %q: %s", target, rec.Body)
			}
		}
	})
}
