package main

import "testing"

func TestReplaceDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:54329/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:54329/toolgate_bench_x?sslmode=disable"},
		{"postgresql://u:p%40ss@db:5432", "postgresql://u:p%40ss@db:5432/toolgate_bench_x"},
	}
	for _, tt := range tests {
		got, err := replaceDatabase(tt.in, "toolgate_bench_x")
		if err != nil || got != tt.want {
			t.Errorf("replaceDatabase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := replaceDatabase("mysql://secret@db/x", "y"); err == nil {
		t.Error("a mysql URL was accepted")
	} else if got := err.Error(); got != "the PostgreSQL URL is not a postgres:// URL" {
		t.Errorf("error %q quotes the URL or says something else", got)
	}
}
