package file_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/providers"
)

// BenchmarkPut: what each kind of write costs on a local folder (a plain
// put pays two fsyncs: file and directory; a deferred one none until Sync).
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 4<<10)
	for _, c := range []struct {
		name string
		opts *blob.PutOptions
	}{
		{"plain", nil},
		{"create-if-absent", &blob.PutOptions{IfAbsent: true}},
		{"deferred", &blob.PutOptions{DeferSync: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := providers.Open(ctx, "file://"+b.TempDir(), providers.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				if err := blob.PutBytes(ctx, s, fmt.Sprintf("meta/k%d", i), data, c.opts); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
