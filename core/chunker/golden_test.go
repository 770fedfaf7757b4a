package chunker

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// goldenData is 24 MiB of reproducible bytes: random, then runs of text
// (where a gear hash sees repeats).
func goldenData() []byte {
	r := rand.New(rand.NewPCG(2026, 11))
	data := make([]byte, 0, 24<<20)
	for len(data) < 24<<20 {
		if r.IntN(3) == 0 {
			data = append(data, bytes.Repeat([]byte(fmt.Sprintf("entity %d relates to %d. ", r.IntN(1000), r.IntN(1000))), 1+r.IntN(400))...)
			continue
		}
		block := make([]byte, 1+r.IntN(64<<10))
		for i := range block {
			block[i] = byte(r.Uint32())
		}
		data = append(data, block...)
	}
	return data
}

// boundaryDigest hashes the chunk lengths the chunker cuts data into.
func boundaryDigest(t *testing.T, data []byte, p Params) string {
	t.Helper()
	c, err := New(bytes.NewReader(data), p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := 0
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d,", len(chunk))
		n++
	}
	return fmt.Sprintf("%d:%x", n, h.Sum(nil)[:8])
}

// TestBoundariesNeverChange pins where chunks are cut, as computed by the
// first implementation: a change here would make every existing repository
// store its data again (no deduplication across the change).
func TestBoundariesNeverChange(t *testing.T) {
	data := goldenData()
	want := map[int]string{4 << 10: "5128:07240dde12908e15", 64 << 10: "337:fab3b352efb5c42e", 1 << 20: "21:a1a713cd92485a00"}
	for avg, digest := range want {
		p, err := ParamsForAverage(avg, 42)
		if err != nil {
			t.Fatal(err)
		}
		if got := boundaryDigest(t, data, p); got != digest {
			t.Errorf("average %d: boundaries %s, want %s", avg, got, digest)
		}
	}
	if got := boundaryDigest(t, data, DefaultParams(7)); got != "20:a8ed42fa751b3553" {
		t.Errorf("default params: boundaries %s, want 20:a8ed42fa751b3553", got)
	}
}
