package duration_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graphkeep/graphkeep/core/duration"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"90s", 90 * time.Second},
		{"168h", 168 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"1w2d", 9 * 24 * time.Hour},
		{"250ms", 250 * time.Millisecond},
		{" 30m ", 30 * time.Minute},
		{"-1h", -time.Hour},
	} {
		got, err := duration.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseRefusesWithExamples(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "6 hours", "7", "d", "7x", "1..5h", "h7", "99999999999w"} {
		_, err := duration.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", in)
			continue
		}
		if in != "99999999999w" && (!errors.Is(err, duration.ErrSyntax) || !strings.Contains(err.Error(), "7d")) {
			t.Errorf("Parse(%q): %v, want ErrSyntax naming examples", in, err)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {7 * 24 * time.Hour, "1w"}, {3 * 24 * time.Hour, "3d"}, {36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"}, {2 * time.Hour, "2h"}, {1500 * time.Millisecond, "1.5s"}, {-48 * time.Hour, "-2d"},
	} {
		if got := duration.Format(tc.d); got != tc.want {
			t.Errorf("Format(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if back, err := duration.Parse(duration.Format(tc.d)); err != nil || back != tc.d {
			t.Errorf("Parse(Format(%v)) = %v, %v", tc.d, back, err)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		A duration.Duration `json:"a"`
		B duration.Duration `json:"b"`
	}
	if err := json.Unmarshal([]byte(`{"a":"7d","b":3600000000000}`), &v); err != nil {
		t.Fatal(err)
	}
	if got, want := time.Duration(v.A), 7*24*time.Hour; got != want {
		t.Fatalf("a = %v, want %v", got, want)
	}
	if got, want := time.Duration(v.B), time.Hour; got != want {
		t.Fatalf("b = %v, want %v", got, want)
	}
	if err := json.Unmarshal([]byte(`{"a":"6 hours"}`), &v); err == nil || !strings.Contains(err.Error(), "6 hours") {
		t.Fatalf("bad duration: %v", err)
	}
	out, _ := json.Marshal(v)
	if got, want := string(out), `{"a":"1w","b":"1h"}`; got != want {
		t.Fatalf("marshal = %s, want %s", got, want)
	}
}

func TestDurationFlagValue(t *testing.T) {
	t.Parallel()
	var d duration.Duration
	if err := d.Set("2w"); err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), "2w"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if err := d.Set("two weeks"); err == nil {
		t.Fatal("Set accepted two weeks")
	}
}

func TestAge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{850 * time.Millisecond, "850ms"}, {1126 * time.Millisecond, "1.13s"}, {169*time.Second + 400*time.Millisecond, "2m49s"},
		{3*time.Hour + 12*time.Minute + 5*time.Second, "3h12m"}, {8182*time.Hour + 4*time.Minute + 1126*time.Millisecond, "340d22h"},
		{2 * time.Minute, "2m"},
	} {
		if got := duration.Age(tc.d); got != tc.want {
			t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
