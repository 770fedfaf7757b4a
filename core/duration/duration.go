// Package duration is graphkeep's one way of reading and writing a length of
// time: Go's units (ns, us, ms, s, m, h) plus days (d) and weeks (w), as an
// operator writes a retention ("7d", "2w", "1d12h"). Every flag, config field
// and API field that takes a duration reads it here, so "7d" is accepted
// wherever "168h" is.
package duration

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units Go's time package lacks.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// Examples is what an error shows as valid input.
const Examples = "a number and a unit, like 90s, 30m, 6h, 7d or 2w (units: ns, us, ms, s, m, h, d, w; combined as 1d12h)"

// ErrSyntax: the text is not a duration.
var ErrSyntax = errors.New("not a duration")

// Parse reads a duration: "0", or one or more number-and-unit pairs, each
// number possibly fractional ("1.5d"), with an optional sign in front.
func Parse(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w: empty; want %s", ErrSyntax, Examples)
	}
	neg := false
	rest := in
	if rest[0] == '-' || rest[0] == '+' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	var total float64
	for rest != "" {
		n := 0
		for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '.') {
			n++
		}
		if n == 0 {
			return 0, syntax(s)
		}
		num, err := strconv.ParseFloat(rest[:n], 64)
		if err != nil {
			return 0, syntax(s)
		}
		rest = rest[n:]
		u := 0
		for u < len(rest) && (rest[u] < '0' || rest[u] > '9') && rest[u] != '.' {
			u++
		}
		unit, ok := units[rest[:u]]
		if !ok {
			return 0, syntax(s)
		}
		rest = rest[u:]
		total += num * float64(unit)
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long a duration (at most about 292 years)", s)
	}
	d := time.Duration(math.Round(total))
	if neg {
		d = -d
	}
	return d, nil
}

// Format writes d the way Parse reads it, in whole days or weeks when it is
// one ("7d", "2w"), else as Go writes it ("36h0m0s" -> "1d12h").
func Format(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	if d%Week == 0 {
		return sign + strconv.FormatInt(int64(d/Week), 10) + "w"
	}
	if d >= Day {
		days := d / Day
		rest := d % Day
		if rest == 0 {
			return sign + strconv.FormatInt(int64(days), 10) + "d"
		}
		return sign + strconv.FormatInt(int64(days), 10) + "d" + trimZeros(rest.String())
	}
	return sign + trimZeros(d.String())
}

// Age writes an elapsed time as people read it, to the precision that
// matters at its size: "850ms", "2m49s", "3h12m", "341d2h". Every front
// end shows an age through it, so one thing is never called two ages.
func Age(d time.Duration) string {
	switch a := max(d, -d); {
	case a < time.Second:
		d = d.Round(time.Millisecond)
	case a < 10*time.Second:
		d = d.Round(10 * time.Millisecond)
	case a < time.Hour:
		d = d.Round(time.Second)
	case a < Day:
		d = d.Round(time.Minute)
	default:
		d = d.Round(time.Hour)
	}
	return Format(d)
}

// Duration is a time.Duration read and written by this package: as a flag
// value (pflag.Value), as text (YAML) and as JSON, where a number is taken as
// nanoseconds, as encoding/json writes a time.Duration.
type Duration time.Duration

// Set implements pflag.Value.
func (d *Duration) Set(s string) error {
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String implements pflag.Value ("0" for none, which flag help leaves
// out as a default).
func (d *Duration) String() string {
	if *d == 0 {
		return "0"
	}
	return Format(time.Duration(*d))
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error { return d.Set(string(b)) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(Format(time.Duration(d))), nil }

// UnmarshalJSON takes "7d" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.Set(s)
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: %s; want %s (or a whole number of nanoseconds)", ErrSyntax, b, Examples)
	}
	*d = Duration(n)
	return nil
}

var units = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": Day, "w": Week,
}

func syntax(s string) error {
	return fmt.Errorf("%w: %q; want %s", ErrSyntax, s, Examples)
}

// trimZeros drops Go's trailing zero units: "36h0m0s" -> "36h", "1h30m0s" -> "1h30m".
func trimZeros(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
