package devauthkit

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
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
