package main

import (
	"slices"
	"testing"
)

func TestParseLevels(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"1,8,64", []int{1, 8, 64}, false},
		{" 2 , 4", []int{2, 4}, false},
		{"0", nil, true},
		{"1,,2", nil, true},
		{"x", nil, true},
	}
	for _, tt := range tests {
		got, err := parseLevels(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseLevels(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPrefixed(t *testing.T) {
	p := prefixed("listening ")
	tests := []struct {
		line   string
		want   string
		wantOK bool
	}{
		{"listening 127.0.0.1:80", "127.0.0.1:80", true},
		{"listening 8080\r", "8080", true},
		{"listening ", "", false},
		{"starting", "", false},
	}
	for _, tt := range tests {
		if got, ok := p(tt.line); got != tt.want || ok != tt.wantOK {
			t.Errorf("prefixed(%q) = %q, %v, want %q, %v", tt.line, got, ok, tt.want, tt.wantOK)
		}
	}
}
