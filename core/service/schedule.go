package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/graphkeep/graphkeep/blob"
	"github.com/graphkeep/graphkeep/core/repo"
)

// Claim tries to win task's window slot for this instance: a claim object
// created with create-if-absent, so that several servers on one repository
// never run the same scheduled task twice in a window. won is false when
// another instance has it.
func (s *Service) Claim(ctx context.Context, task string, slot int64, now time.Time) (won bool, err error) {
	r, err := s.Primary(ctx)
	if err != nil {
		return false, err
	}
	key := fmt.Sprintf("%s%s/%d", repo.ClaimPrefix, task, slot)
	err = blob.PutBytes(ctx, r.Store(), key, []byte(now.UTC().Format(time.RFC3339)), &blob.PutOptions{IfAbsent: true})
	switch {
	case errors.Is(err, blob.ErrExists):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// TidyClaims deletes claims older than maxAge.
func (s *Service) TidyClaims(ctx context.Context, now time.Time, maxAge time.Duration) error {
	r, err := s.Primary(ctx)
	if err != nil {
		return err
	}
	store := r.Store()
	return blob.Walk(ctx, store, repo.ClaimPrefix, func(o blob.Object) error {
		if now.Sub(o.ModTime) > maxAge && strings.HasPrefix(o.Key, repo.ClaimPrefix) {
			_ = store.Delete(ctx, o.Key)
		}
		return nil
	})
}
