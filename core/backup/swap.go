package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A restore swaps the verified tree into place. The destination is never
// missing and no undo copy is ever deleted:
//
//   - The swap is one atomic exchange of the two directories where the
//     kernel has renameat2(RENAME_EXCHANGE); elsewhere two renames.
//   - Before it, a journal beside the destination names the staged tree
//     (by inode), the destination and where the old tree goes. The next
//     restore of that destination reads it first and finishes (or undoes)
//     a swap a crash interrupted, then removes staging directories nothing
//     names any more.
//   - The old tree is kept as .graphkeep-previous-NAME-<time>, one per
//     restore; they go only when asked (RemovePrevious).
//   - One restore swaps into a destination at a time. A restore holds a
//     lock (flock) on the destination's parent directory from its recovery
//     step to its swap, so restores by different processes into one root
//     take turns; within a process, restores into one root share that lock
//     and take turns per destination. Each touches only the names of its
//     own destination (its staging directories end in exactly the random
//     suffix, so graph "a" never takes graph "a-b"'s for its own).

// Prefixes of the names a restore uses beside the destination.
const (
	stagingPrefix  = ".graphkeep-restore-"
	previousPrefix = ".graphkeep-previous-"
	journalPrefix  = ".graphkeep-swap-"
)

var errExchangeUnsupported = errors.New("atomic exchange unsupported")

// exchangeDirs is exchange; tests replace it to take the two-rename path.
var exchangeDirs = exchange

// swapJournal is what a swap in progress leaves beside the destination.
type swapJournal struct {
	Dest     string `json:"dest"`
	Staged   string `json:"staged"`
	Previous string `json:"previous"`
	// StagedInode tells whether the staged tree already is at Dest.
	StagedInode uint64 `json:"staged_inode"`
}

// crashHook lets tests stop a swap at a point as a kill would.
var crashHook func(point string)

func crashPoint(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}

// lockDest takes dest's restore locks: dest's own within this process, and
// the flock on its parent directory, shared by this process's restores
// there (a flock belongs to an open file, so a second open by this process
// would wait for the first). It waits for other restores into dest, and
// for other processes' restores beside it.
func lockDest(dest string) (unlock func(), err error) {
	own, doneDest := restoreLocks.dests.use(dest)
	own.Lock()
	unlockDest := func() { own.Unlock(); doneDest() }
	parent, doneParent := restoreLocks.parents.use(filepath.Dir(dest))
	unlockParent := func() {
		if doneParent() && parent.f != nil {
			parent.f.Close()
		}
	}
	if err := parent.open(filepath.Dir(dest)); err != nil {
		unlockParent()
		unlockDest()
		return nil, err
	}
	return func() { unlockParent(); unlockDest() }, nil
}

// restoreLocks are this process's restore locks.
var restoreLocks struct {
	dests   shared[sync.Mutex]
	parents shared[parentLock]
}

// parentLock is the flock on a parent directory, held while any of this
// process's restores there runs.
type parentLock struct {
	once sync.Mutex // taken while the first user opens and locks f
	f    *os.File
	err  error
}

func (l *parentLock) open(dir string) error {
	l.once.Lock()
	defer l.once.Unlock()
	if l.f != nil || l.err != nil {
		return l.err
	}
	f, err := os.Open(dir)
	if err == nil {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
		}
	}
	if err != nil {
		l.err = fmt.Errorf("lock %s for the restore: %w", dir, err)
		return l.err
	}
	l.f = f
	return nil
}

// shared keeps one value per key while anyone uses it.
type shared[T any] struct {
	mu    sync.Mutex
	byKey map[string]*sharedEntry[T]
}

type sharedEntry[T any] struct {
	users int
	value T
}

// use returns key's value, made on first use, and done, which says whether
// this was its last user (the value is then forgotten).
func (s *shared[T]) use(key string) (value *T, done func() (last bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[string]*sharedEntry[T]{}
	}
	e := s.byKey[key]
	if e == nil {
		e = &sharedEntry[T]{}
		s.byKey[key] = e
	}
	e.users++
	return &e.value, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if e.users--; e.users > 0 {
			return false
		}
		delete(s.byKey, key)
		return true
	}
}

// swapIn moves the verified tree tmp to dest, keeping what was at dest as a
// new undo copy.
func swapIn(tmp, dest string) (previous string, err error) {
	if err := syncDir(tmp); err != nil {
		return "", err
	}
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if _, err := os.Lstat(dest); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(tmp, dest); err != nil {
			return "", fmt.Errorf("move the restored graph into %s: %w", dest, err)
		}
		return "", syncDir(parent)
	}
	previous, err = newPreviousName(parent, base)
	if err != nil {
		return "", err
	}
	info, err := os.Lstat(tmp)
	if err != nil {
		return "", err
	}
	j := swapJournal{Dest: dest, Staged: tmp, Previous: previous, StagedInode: inode(info)}
	if err := writeJournal(parent, base, j); err != nil {
		return "", err
	}
	switch err := exchangeDirs(tmp, dest); {
	case err == nil:
		crashPoint("exchanged")
		if err := os.Rename(tmp, previous); err != nil {
			return "", fmt.Errorf("keep the previous %s as %s: %w (the restored graph is in place)", dest, previous, err)
		}
	case errors.Is(err, errExchangeUnsupported):
		if err := os.Rename(dest, previous); err != nil {
			return "", fmt.Errorf("move %s aside: %w", dest, err)
		}
		crashPoint("moved-aside")
		if err := os.Rename(tmp, dest); err != nil {
			if undo := os.Rename(previous, dest); undo != nil {
				return "", fmt.Errorf("move the restored graph into %s: %w; the previous directory is at %s", dest, err, previous)
			}
			return "", fmt.Errorf("move the restored graph into %s: %w", dest, err)
		}
	default:
		_ = removeJournal(parent, base)
		return "", fmt.Errorf("swap the restored graph into %s: %w", dest, err)
	}
	if err := syncDir(parent); err != nil {
		return "", err
	}
	return previous, removeJournal(parent, base)
}

// recoverDest finishes a swap into dest that a crash interrupted, then
// removes staging directories of dest that no swap names. Called with the
// destination's lock held, before a restore writes anything.
func recoverDest(dest string) (note string, err error) {
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	data, err := os.ReadFile(filepath.Join(parent, journalPrefix+base+".json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("read the journal of an interrupted restore into %s: %w", dest, err)
	default:
		var j swapJournal
		if err := json.Unmarshal(data, &j); err != nil || j.Dest != dest || !strings.HasPrefix(filepath.Base(j.Staged), stagingPrefix) ||
			!strings.HasPrefix(filepath.Base(j.Previous), previousPrefix) || filepath.Dir(j.Staged) != parent || filepath.Dir(j.Previous) != parent {
			return "", fmt.Errorf("the journal %s of an interrupted restore is damaged; look at the directories beside %s, then delete it",
				filepath.Join(parent, journalPrefix+base+".json"), dest)
		}
		if note, err = finishSwap(j); err != nil {
			return "", err
		}
		if err := syncDir(parent); err != nil {
			return "", err
		}
		if err := removeJournal(parent, base); err != nil {
			return "", err
		}
	}
	stale, err := filepath.Glob(filepath.Join(parent, stagingPrefix+globEscape(base)+"-*"))
	if err != nil {
		return note, err
	}
	for _, dir := range stale {
		if !isStagingOf(filepath.Base(dir), base) {
			continue // another graph's, whose name starts like this one's
		}
		if info, err := os.Lstat(dir); err == nil && info.IsDir() {
			if err := os.RemoveAll(dir); err != nil {
				return note, fmt.Errorf("remove %s, left by an interrupted restore: %w", dir, err)
			}
		}
	}
	return note, nil
}

// finishSwap completes j: the restored tree goes (or stays) at Dest and
// the old one at Previous; a swap that had not begun is dropped.
func finishSwap(j swapJournal) (string, error) {
	destInfo, destErr := os.Lstat(j.Dest)
	_, stagedErr := os.Lstat(j.Staged)
	switch {
	case destErr == nil && inode(destInfo) == j.StagedInode:
		// Exchanged: the old tree is at the staging name.
		if stagedErr == nil {
			if err := os.Rename(j.Staged, j.Previous); err != nil {
				return "", fmt.Errorf("finish an interrupted restore: keep the previous %s as %s: %w", j.Dest, j.Previous, err)
			}
		}
		return fmt.Sprintf("an interrupted restore into %s was finished: the previous directory is at %s", j.Dest, j.Previous), nil
	case errors.Is(destErr, os.ErrNotExist) && stagedErr == nil:
		// Moved aside, not yet in: put the verified tree in.
		if err := os.Rename(j.Staged, j.Dest); err != nil {
			return "", fmt.Errorf("finish an interrupted restore into %s: %w (the verified tree is at %s)", j.Dest, err, j.Staged)
		}
		return fmt.Sprintf("an interrupted restore into %s was finished: the previous directory is at %s", j.Dest, j.Previous), nil
	case errors.Is(destErr, os.ErrNotExist):
		if _, err := os.Lstat(j.Previous); err == nil {
			if err := os.Rename(j.Previous, j.Dest); err != nil {
				return "", fmt.Errorf("undo an interrupted restore into %s: %w (the old directory is at %s)", j.Dest, err, j.Previous)
			}
		}
		return fmt.Sprintf("an interrupted restore into %s was undone", j.Dest), nil
	}
	// The swap had not begun: Dest is untouched; the staging tree goes
	// with the other leftovers.
	return "", nil
}

// swapJournalGraph returns the directory name a swap journal file is for.
func swapJournalGraph(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, journalPrefix)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ".json")
}

func writeJournal(parent, base string, j swapJournal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	path := filepath.Join(parent, journalPrefix+base+".json")
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write the restore journal beside %s: %w", j.Dest, err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		_ = f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the restore journal beside %s: %w", j.Dest, err)
	}
	return syncDir(parent)
}

func removeJournal(parent, base string) error {
	err := os.Remove(filepath.Join(parent, journalPrefix+base+".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(parent)
}

// newPreviousName is a name for the next undo copy of base, by time.
func newPreviousName(parent, base string) (string, error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for n := 0; n < 100; n++ {
		name := previousPrefix + base + "-" + stamp
		if n > 0 {
			name += fmt.Sprintf("-%d", n)
		}
		p := filepath.Join(parent, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("too many undo copies of %s made this second", filepath.Join(parent, base))
}

// Previous is an undo copy a restore kept.
type Previous struct {
	Path      string    `json:"path"`
	Time      time.Time `json:"time"`
	SizeBytes int64     `json:"size_bytes"`
}

// ListPrevious lists the undo copies kept beside dest, oldest first.
func ListPrevious(dest string) ([]Previous, error) {
	dest, err := filepath.Abs(dest)
	if err != nil {
		return nil, err
	}
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	matches, err := filepath.Glob(filepath.Join(parent, previousPrefix+globEscape(base)+"*"))
	if err != nil {
		return nil, err
	}
	out := []Previous{}
	for _, p := range matches {
		rest := strings.TrimPrefix(filepath.Base(p), previousPrefix+base)
		var t time.Time
		switch {
		case rest == "": // the single copy older versions kept
		case strings.HasPrefix(rest, "-") && len(rest) >= 17:
			if t, err = time.Parse("20060102T150405Z", rest[1:17]); err != nil {
				continue // another graph whose name starts like this one's
			}
		default:
			continue
		}
		info, err := os.Lstat(p)
		if err != nil || !info.IsDir() {
			continue
		}
		if t.IsZero() {
			t = info.ModTime()
		}
		out = append(out, Previous{Path: p, Time: t, SizeBytes: treeSize(p)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// RemovePrevious deletes the undo copies of dest older than olderThan (all
// when zero) and returns what it removed.
func RemovePrevious(dest string, olderThan time.Duration) ([]Previous, error) {
	all, err := ListPrevious(dest)
	if err != nil {
		return nil, err
	}
	var removed []Previous
	for _, p := range all {
		if olderThan > 0 && time.Since(p.Time) < olderThan {
			continue
		}
		if err := os.RemoveAll(p.Path); err != nil {
			return removed, fmt.Errorf("remove %s: %w", p.Path, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// isStagingOf reports whether name is a staging directory of a restore
// into base: the prefix, base, "-" and the random suffix, nothing more.
func isStagingOf(name, base string) bool {
	suffix, ok := strings.CutPrefix(name, stagingPrefix+base+"-")
	if !ok || len(suffix) != 2*randomSuffixBytes {
		return false
	}
	for _, c := range suffix {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// FinishInterruptedSwap finishes a restore's swap into dir that a crash
// interrupted, if there is one (the journal beside dir says); backups call
// it so that a graph is never backed up, or found missing, half-swapped.
func FinishInterruptedSwap(dir string) (note string, err error) {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if _, err := os.Lstat(filepath.Join(parent, journalPrefix+base+".json")); err != nil {
		return "", nil
	}
	unlock, err := lockDest(dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	return recoverDest(dir)
}
