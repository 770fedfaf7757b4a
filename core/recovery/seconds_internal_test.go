package recovery

import "testing"

// A sub-second lag reads in milliseconds, not "0s" (a failover plan said
// "loses up to 0s of backups" while it would lose 973 ms).
func TestSecondsReadsAsPeopleDo(t *testing.T) {
	for in, want := range map[float64]string{0.973: "973ms", 0: "0s", 1.4: "1.4s", 95.6: "1m36s", 7200: "2h"} {
		if got := seconds(in); got != want {
			t.Errorf("seconds(%v) = %q, want %q", in, got, want)
		}
	}
}
