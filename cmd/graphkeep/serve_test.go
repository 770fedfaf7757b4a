package main

import (
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/api"
)

func TestExposureNeedsATokenBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		listen string
		tokens int
		ok     bool
	}{
		{"127.0.0.1:8080", 0, true},
		{"localhost:8080", 0, true},
		{"[::1]:8080", 0, true},
		{"0.0.0.0:8080", 0, false},
		{":8080", 0, false},
		{"10.1.2.3:8080", 0, false},
		{"0.0.0.0:8080", 1, true},
	} {
		var tokens []api.Token
		for i := 0; i < c.tokens; i++ {
			tokens = append(tokens, api.Token{Token: "x"})
		}
		err := checkExposure(c.listen, tokens)
		if (err == nil) != c.ok {
			t.Errorf("checkExposure(%q, %d tokens) = %v, want ok=%v", c.listen, c.tokens, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "GRAPHKEEP_ADMIN_TOKEN") {
			t.Errorf("the refusal does not say how to fix it: %v", err)
		}
	}
}

func TestServerTokens(t *testing.T) {
	t.Setenv("GRAPHKEEP_ADMIN_TOKEN", "an-admin-token-long-enough")
	t.Setenv("GRAPHKEEP_READ_TOKEN", "")
	got, err := serverTokens([]api.Token{{Name: "ops", Token: "another-long-token-for-reading", Role: "read"}})
	if err != nil || len(got) != 2 || got[1].Role != "admin" {
		t.Fatalf("tokens = %+v, %v", got, err)
	}
	for _, bad := range []api.Token{{Name: "short", Token: "tiny", Role: "admin"}, {Name: "role", Token: "long-enough-token-value", Role: "root"}} {
		_, err := serverTokens([]api.Token{bad})
		if err == nil || strings.Contains(err.Error(), bad.Token) {
			t.Errorf("token %+v: err = %v (must refuse without echoing the token)", bad, err)
		}
	}
}
