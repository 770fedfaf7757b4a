package chunker_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/graphkeep/graphkeep/core/chunker"
)

// table is rows "key\tpayload\n" in key order.
func table(rows map[string]string) []byte {
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString(k + "\t" + rows[k] + "\n")
	}
	return b.Bytes()
}

func firstField(line []byte) []byte {
	if i := bytes.IndexByte(line, '\t'); i >= 0 {
		return line[:i]
	}
	return line
}

func rowChunks(t *testing.T, data []byte, p chunker.Params) [][]byte {
	t.Helper()
	c, err := chunker.NewRows(bytes.NewReader(data), p, firstField)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), chunk...))
	}
}

var rowParams = chunker.Params{MinSize: 8 << 10, AvgSize: 32 << 10, MaxSize: 256 << 10, Seed: 7}

func TestRowsCutsAtRowsAndLosesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := map[string]string{}
	for i := range 3000 {
		rows[fmt.Sprintf("%016x", rng.Uint64())] = strings.Repeat("v", 500+rng.IntN(3000)) + fmt.Sprint(i)
	}
	rows["giant"] = strings.Repeat("g", 700<<10) // longer than the maximum: cut at it
	data := table(rows)
	chunks := rowChunks(t, data, rowParams)
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("the chunks do not add up to the input (%d of %d bytes)", len(got), len(data))
	}
	for i, c := range chunks {
		if len(c) > rowParams.MaxSize {
			t.Fatalf("chunk %d: %d bytes, over the maximum", i, len(c))
		}
		if c[len(c)-1] != '\n' && len(c) != rowParams.MaxSize {
			t.Fatalf("chunk %d ends inside a row without being full (%d bytes)", i, len(c))
		}
	}
	if avg := len(data) / len(chunks); avg < rowParams.AvgSize/2 || avg > rowParams.AvgSize*2 {
		t.Fatalf("average chunk %d bytes, want about %d", avg, rowParams.AvgSize)
	}
	// Reading through a reader that returns a byte at a time cuts the same.
	c, err := chunker.NewRows(iotestOneByte{bytes.NewReader(data)}, rowParams, firstField)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		chunk, err := c.Next()
		if err == io.EOF {
			if i != len(chunks) {
				t.Fatalf("%d chunks one byte at a time, %d at once", i, len(chunks))
			}
			break
		}
		if !bytes.Equal(chunk, chunks[i]) {
			t.Fatalf("chunk %d differs when read one byte at a time", i)
		}
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// A few percent of rows changed or inserted at random keys touch a few
// times that share of the bytes: the boundaries stay with their rows.
func TestRowsChangesStayLocal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rows := map[string]string{}
	var keys []string
	for range 20000 {
		k := fmt.Sprintf("%016x", rng.Uint64())
		rows[k] = strings.Repeat(fmt.Sprint(rng.Uint64()), 200) // ~4 KB
		keys = append(keys, k)
	}
	before := rowChunks(t, table(rows), rowParams)
	known := map[[32]byte]bool{}
	for _, c := range before {
		known[sha256.Sum256(c)] = true
	}
	for i := range len(keys) / 100 { // 1% updated, 1% inserted
		rows[keys[rng.IntN(len(keys))]] = fmt.Sprint("updated ", i, strings.Repeat("u", 3000))
		rows[fmt.Sprintf("%016x", rng.Uint64())] = strings.Repeat("n", 4000)
	}
	after := table(rows)
	var newBytes int
	for _, c := range rowChunks(t, after, rowParams) {
		if !known[sha256.Sum256(c)] {
			newBytes += len(c)
		}
	}
	share := float64(newBytes) / float64(len(after))
	t.Logf("2%% of rows changed: %.1f%% of the bytes in new chunks", 100*share)
	if share > 0.35 {
		t.Fatalf("2%% of rows changed put %.0f%% of the bytes in new chunks", 100*share)
	}
}
