package mem_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/blob/blobtest"
	"github.com/graphkeep/graphkeep/providers"
)

type harness struct{}

var seq atomic.Int64

func (harness) NewLocation(ctx context.Context, t *testing.T) func(t *testing.T) blob.Store {
	url := fmt.Sprintf("mem://conformance-%d", seq.Add(1))
	return func(t *testing.T) blob.Store {
		s, err := providers.Open(ctx, url, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) { blobtest.RunConformance(t, harness{}) })
}
