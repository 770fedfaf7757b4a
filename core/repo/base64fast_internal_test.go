package repo

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// The fast encoder writes exactly what the standard library does, for
// every length of whole groups and every byte value.
func TestEncodeBase64GroupsMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n += 3 {
		for range 20 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(rng.UintN(256))
			}
			want := base64.StdEncoding.EncodeToString(src)
			got := make([]byte, n/3*4)
			encodeBase64Groups(got, src)
			if string(got) != want {
				t.Fatalf("%d bytes %x:\n got %s\nwant %s", n, src, got, want)
			}
		}
	}
	all := make([]byte, 768)
	for i := range all {
		all[i] = byte(i)
	}
	got := make([]byte, 1024)
	encodeBase64Groups(got, all)
	if !bytes.Equal(got, []byte(base64.StdEncoding.EncodeToString(all))) {
		t.Fatal("byte values 0-255")
	}
}

func BenchmarkEncodeBase64Groups(b *testing.B) {
	src := make([]byte, 3<<18)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, len(src)/3*4)
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			base64.StdEncoding.Encode(dst, src)
		}
	})
	b.Run("pairs", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			encodeBase64Groups(dst, src)
		}
	})
}
