package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/graphkeep/graphkeep/integration/miniotest"
)

// chromium finds the browser: GRAPHKEEP_CHROMIUM, else chromium on PATH.
// Under CI=true a missing browser fails with the fix; elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the browser tests need chromium; run them with make test")
	}
	if p := os.Getenv("GRAPHKEEP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium for the browser tests: install it (apt-get install chromium; make test does) or set GRAPHKEEP_CHROMIUM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifacts is where the browser test writes its screenshots:
// GRAPHKEEP_ARTIFACTS/browser, else .cache/artifacts/browser in the checkout.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", ".cache", "artifacts", "browser")
	if a := os.Getenv("GRAPHKEEP_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab that records every console error,
// uncaught exception, policy violation and failed request of the page.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	base string

	mu       sync.Mutex
	problems []string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests may run as root
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: artifacts(t), base: base}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.problem("console %s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			b.problem("uncaught exception: %s", text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				b.problem("browser log: %s %s", ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventLoadingFailed:
			b.problem("request failed: %s (%s)", ev.ErrorText, ev.RequestID)
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				b.problem("request %s answered %d", ev.Response.URL, ev.Response.Status)
			}
		}
	})
	// The first run starts the browser and must not carry a deadline: the
	// browser lives as long as that run's context.
	if err := chromedp.Run(ctx, network.Enable(), log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// run runs actions with a deadline, failing the test with what was asked.
func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test with a screenshot, the page's text and its problems.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
	var page string
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_ = chromedp.Run(ctx, chromedp.Evaluate(`document.body.innerText`, &page))
	b.mu.Lock()
	problems := strings.Join(b.problems, "\n")
	b.mu.Unlock()
	b.t.Fatalf("browser: %s: %v\npage:\n%s\nproblems:\n%s", what, err, page, problems)
}

// open goes to a page of the dashboard (a hash route) and waits for sel.
func (b *browser) open(route, sel string) {
	b.t.Helper()
	b.run("open "+route, chromedp.Navigate(b.base+"/#"+route), chromedp.WaitVisible(sel, chromedp.ByQuery))
}

// text is the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// eventually waits until the JavaScript expression is true.
func (b *browser) eventually(what, expr string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var ok bool
		b.run(what, chromedp.Evaluate(expr, &ok))
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.fail(what, fmt.Errorf("not within %s", within))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// signIn types token into the sign-in form and waits for the overview.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run("sign in", chromedp.WaitVisible("#signin", chromedp.ByQuery),
		chromedp.SendKeys("#token", token, chromedp.ByQuery),
		chromedp.Click("#signin-submit", chromedp.ByQuery),
		chromedp.WaitVisible("#overall", chromedp.ByQuery))
}

// layoutProblems lists what reads badly on the page as shown: a single
// token (an id, a size, a time) broken across lines, and a page wider than
// the window (it would scroll sideways).
const layoutProblems = `(() => {
  const out = [];
  const walk = document.createTreeWalker(document.getElementById("main"), NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const t = n.textContent.trim();
    // One token: no space at all, or a number and its unit ("10 ms").
    const token = t && (!/\s/.test(t.replace(/\u00a0/g, "x")) || /^[\d.,]+\s(ms|s|min|h|days|B|KiB|MiB|GiB|TiB)$/.test(t));
    if (!token || !n.parentElement.offsetParent) continue;
    const r = document.createRange();
    r.selectNodeContents(n);
    const rects = [...r.getClientRects()].filter((q) => q.width > 0);
    const lines = new Set(rects.map((q) => Math.round(q.top)));
    // A token longer than its box may break (a long path); one that would
    // fit on a line must not.
    const width = rects.reduce((sum, q) => sum + q.width, 0);
    if (lines.size > 1 && n.parentElement.closest("td, th, dd") && width <= n.parentElement.clientWidth) {
      out.push("the token " + JSON.stringify(t) + " breaks across " + lines.size + " lines though it fits in " + n.parentElement.clientWidth + " px");
    }
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) out.push("the page is " + doc.scrollWidth + " px wide in a " + doc.clientWidth + " px window: it scrolls sideways");
  return out;
})()`

// checkLayout fails the test when the page shows a layout problem.
func (b *browser) checkLayout(page string) {
	b.t.Helper()
	var problems []string
	b.run("layout of "+page, chromedp.Evaluate(layoutProblems, &problems))
	for _, p := range problems {
		b.t.Errorf("%s: %s", page, p)
	}
}

func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page problem: %s", p)
	}
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// the real binary: sign in, three graphs, a backup watched to its new
// snapshot, that snapshot's page, a failover dry run's plan, a target on a
// MinIO that stops turning UNREACHABLE, and a read token that cannot act.
// Any console error, exception or failed request fails it; each page is
// saved as a screenshot.
func TestDashboardInBrowser(t *testing.T) {
	chromium(t)
	srv := miniotest.Start(t)
	e := newEnv(t)
	e.extra = minioEnv("browser test", "GRAPHKEEP_ADMIN_TOKEN="+testAdminToken, "GRAPHKEEP_READ_TOKEN="+testReadToken)
	e.ok("fixture", "generate", e.root, "--graphs", "alpha,beta,gamma", "--size", "6000000")
	e.ok("init")
	e.ok("backup", "--all")
	e.ok("targets", "add", "dr", "s3://"+srv.NewBucket(t)+"/replica?endpoint="+srv.Endpoint+"&use_path_style=true")
	e.ok("checkpoint", "create")
	e.ok("replicate")
	s := e.startServer(t, "")
	b := newBrowser(t, s.url)

	// Sign in with the admin token; the overview shows the three graphs.
	b.run("open", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#signin", chromedp.ByQuery))
	var navShown bool
	b.run("navigation before signing in", chromedp.Evaluate(`!!document.querySelector("#nav").offsetParent`, &navShown))
	if navShown {
		t.Error("the sign-in page shows the navigation")
	}
	b.shot("01-sign-in")
	b.signIn(testAdminToken)
	b.eventually("three graphs on the overview", `document.querySelectorAll("tr[data-graph]").length === 3`, 30*time.Second)
	for _, g := range []string{"alpha", "beta", "gamma"} {
		if !strings.Contains(b.text(`tr[data-graph="`+g+`"]`), g) {
			t.Fatalf("overview lacks graph %s", g)
		}
	}
	b.shot("02-overview")
	b.checkLayout("overview")
	b.open("/graphs", `tr[data-graph="gamma"]`)
	b.shot("03-graphs")
	b.checkLayout("graphs")

	// Back up alpha from its page and follow the job to the new snapshot.
	e.ok("fixture", "grow", e.root, "alpha", "--percent", "30")
	var before []struct{ ID string }
	s.must(200, "GET", "/backup/graphs/alpha/snapshots", "", &before)
	b.open("/graphs/alpha", "#backup-now")
	b.run("back up now", chromedp.Click("#backup-now", chromedp.ByQuery),
		chromedp.WaitVisible(`#job .job`, chromedp.ByQuery))
	b.eventually("the backup to finish", `!!document.querySelector('#job .job[data-state="succeeded"]')`, 2*time.Minute)
	id := b.text("#job .notice a")
	var snaps []struct{ ID string }
	s.must(200, "GET", "/backup/graphs/alpha/snapshots", "", &snaps)
	if len(snaps) != len(before)+1 || snaps[len(snaps)-1].ID != id {
		t.Fatalf("the page names snapshot %q; the API lists %+v", id, snaps)
	}
	b.eventually("the new snapshot in the list", `!!document.querySelector('tr[data-snapshot="`+id+`"]')`, 30*time.Second)
	b.shot("04-graph")
	b.run("open the snapshot", chromedp.Click("#job .notice a", chromedp.ByQuery), chromedp.WaitVisible("#files", chromedp.ByQuery))
	if page := b.text("main"); !strings.Contains(page, "vdb_entities.json") || !strings.Contains(page, id) {
		t.Fatalf("snapshot page: %s", page)
	}
	b.shot("05-snapshot")
	b.open("/jobs", `tr[data-job]`)
	b.shot("06-jobs")
	b.checkLayout("jobs")
	// Each finished job says what it did, not just "done".
	var outcomes []string
	b.run("job outcomes", chromedp.Evaluate(`[...document.querySelectorAll("tr[data-job] td:last-child")].map((td) => td.textContent)`, &outcomes))
	for _, o := range outcomes {
		if o == "done" || o == "succeeded" {
			t.Errorf("a finished job's outcome says only %q", o)
		}
	}
	if len(outcomes) == 0 || !strings.Contains(strings.Join(outcomes, "\n"), "snapshot "+id) {
		t.Errorf("the backup job's outcome does not name its snapshot: %q", outcomes)
	}

	// A failover dry run: the plan says what would be lost and changes nothing.
	b.open("/actions", "#failover-plan")
	b.run("plan a failover", chromedp.Click("#failover-plan", chromedp.ByQuery), chromedp.WaitVisible(".plan", chromedp.ByQuery))
	if plan := b.text(".plan"); !strings.Contains(plan, "Data that would be lost") || !strings.Contains(plan, "target dr") {
		t.Fatalf("failover plan: %s", plan)
	}
	if loss := b.text("#failover-loss"); !strings.Contains(loss, "Failing over to dr loses") {
		t.Fatalf("the run box does not say what would be lost: %q", loss)
	}
	var disabled bool
	b.run("run stays locked", chromedp.Evaluate(`document.querySelector("#failover-run").disabled`, &disabled))
	if !disabled {
		t.Fatal("failover can run before its target's id is typed")
	}
	b.run("type the target", chromedp.SendKeys("#failover-confirm", "dr", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#failover-run").disabled`, &disabled))
	if disabled {
		t.Fatal("failover stays locked after its plan and the typed confirmation")
	}
	b.shot("07-failover-plan")
	var status struct {
		Failovers []any `json:"failovers"`
	}
	s.must(200, "GET", "/recovery/status", "", &status)
	if len(status.Failovers) != 0 {
		t.Fatalf("a dry run failed over: %+v", status)
	}

	// The target's MinIO stops: the overview shows it UNREACHABLE.
	timeout := 10 * time.Second
	if err := srv.Container.Stop(context.Background(), &timeout); err != nil {
		t.Fatal(err)
	}
	b.open("/", `tr[data-target="dr"]`)
	b.eventually("target dr UNREACHABLE", `document.querySelector('tr[data-target="dr"]').textContent.includes("UNREACHABLE")`, 90*time.Second)
	b.shot("08-target-unreachable")

	// A phone-sized window still reads: no page scrolls sideways, no token
	// breaks.
	b.run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.WaitVisible("#overall", chromedp.ByQuery))
	b.shot("09-overview-phone")
	b.checkLayout("overview on a phone")
	var targetsScroll bool
	b.run("targets table on a phone", chromedp.Evaluate(`(() => { const w = document.querySelector('tr[data-target="dr"]').closest(".table-wrap"); return w.scrollWidth > w.clientWidth + 1; })()`, &targetsScroll))
	if targetsScroll {
		t.Error("on a phone the targets table scrolls sideways")
	}
	for _, p := range []struct{ route, sel, name string }{
		{"/graphs", `tr[data-graph="gamma"]`, "graphs"}, {"/graphs/alpha", `tr[data-snapshot="` + id + `"]`, "graph"},
		{"/graphs/alpha/snapshots/" + id, "#files", "snapshot"}, {"/jobs", "tr[data-job]", "jobs"}, {"/actions", "#failover-plan", "actions"},
	} {
		b.open(p.route, p.sel)
		b.shot("09-" + p.name + "-phone")
		b.checkLayout(p.name + " on a phone")
	}
	b.run("laptop", chromedp.EmulateViewport(1280, 900))

	// A read token sees everything and is offered no action.
	b.run("sign out", chromedp.Click("#signout", chromedp.ByQuery))
	b.signIn(testReadToken)
	b.open("/graphs/alpha", `tr[data-snapshot="`+id+`"]`)
	var offered bool
	b.run("look for actions", chromedp.Evaluate(`!!document.querySelector("#backup-now")`, &offered))
	if offered {
		t.Fatal("a read token is offered 'Back up now'")
	}
	b.open("/actions", "#read-only")
	b.shot("10-read-only")
	if code := s.callAs(testReadToken, "POST", "/backup/graphs/alpha/snapshots", "", nil); code != 403 {
		t.Fatalf("read token backing up: %d, want 403", code)
	}
	b.checkClean()
}

// TestDashboardWithoutTokens: a token-less server (loopback only) shows the
// overview at once, with no sign-in and no sign-out.
func TestDashboardWithoutTokens(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	e.ok("fixture", "generate", e.root, "--graphs", "alpha", "--size", "2000000")
	e.ok("init")
	e.ok("backup", "--all")
	s := e.startServer(t, "")
	b := newBrowser(t, s.url)
	b.run("open", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#overall", chromedp.ByQuery))
	b.eventually("graph alpha listed", `!!document.querySelector('tr[data-graph="alpha"]')`, 30*time.Second)
	var signOutShown bool
	b.run("sign-out hidden", chromedp.Evaluate(`!document.querySelector("#signout").hidden`, &signOutShown))
	if signOutShown {
		t.Fatal("a token-less server offers to sign out")
	}
	if who := b.text("#who"); !strings.Contains(who, "no sign-in") {
		t.Fatalf("header says %q", who)
	}
	b.open("/graphs/alpha", "#backup-now")
	b.shot("11-no-tokens")
	b.checkClean()
}

// TestDashboardPostgresGraphs: the dashboard shows where each graph lives
// (a workspace in PostgreSQL), each snapshot's stores, and a partial
// snapshot (a workspace whose graph is kept elsewhere) as such.
func TestDashboardPostgresGraphs(t *testing.T) {
	chromium(t)
	e := newPGEnv(t)
	e.ingest("alpha", 1, 2)
	e.ingest("beta", 1, 2)
	e.count("WITH d AS (DELETE FROM lightrag_graph_nodes WHERE workspace = 'beta' RETURNING 1) SELECT count(*) FROM d")
	e.ok("init")
	e.ok("backup", "--all")
	s := e.startServer(t, "")
	b := newBrowser(t, s.url)
	b.run("open", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#overall", chromedp.ByQuery))
	b.open("/graphs/alpha", "tr[data-snapshot]")
	if page := b.text("main"); !strings.Contains(page, "PostgreSQL") || !strings.Contains(page, `workspace "alpha"`) || strings.Contains(page, e.srv.Password) {
		t.Fatalf("graph page:\n%s", page)
	}
	b.checkLayout("postgres graph")
	b.shot("12-postgres-graph")
	var snaps []pgSnapshotLine
	e.jsonOut(&snaps, "snapshots", "alpha")
	b.open("/graphs/alpha/snapshots/"+snaps[0].ID, "#files")
	if page := b.text("main"); !strings.Contains(page, "graph store") || !strings.Contains(page, "lightrag_graph_nodes") || !strings.Contains(page, "(table)") {
		t.Fatalf("snapshot page:\n%s", page)
	}
	b.checkLayout("postgres snapshot")
	b.shot("13-postgres-snapshot")
	b.open("/graphs/beta", "tr[data-snapshot]")
	if row := b.text("tr[data-snapshot]"); !strings.Contains(row, "partial") {
		t.Fatalf("beta's snapshot row: %q", row)
	}
	e.jsonOut(&snaps, "snapshots", "beta")
	b.open("/graphs/beta/snapshots/"+snaps[0].ID, "#files")
	if page := b.text("main"); !strings.Contains(page, "not in the snapshot") {
		t.Fatalf("partial snapshot page:\n%s", page)
	}
	b.shot("14-postgres-partial")
	// A dry run from the snapshot page, then a clone.
	e.ingest("alpha", 3, 3)
	e.jsonOut(&snaps, "snapshots", "alpha")
	b.open("/graphs/alpha/snapshots/"+snaps[0].ID, "#restore-confirm")
	b.run("dry run", chromedp.Click("#restore-dry-run", chromedp.ByQuery), chromedp.SendKeys("#restore-confirm", "alpha", chromedp.ByQuery),
		chromedp.Click("#restore", chromedp.ByQuery))
	b.eventually("dry run result", `document.body.innerText.includes("succeeded") && document.body.textContent.includes('"dry_run": true')`, 30*time.Second)
	if got := e.docs("alpha"); got != 3 {
		t.Fatalf("the dry run changed the workspace: %d documents", got)
	}
	b.run("clone", chromedp.Click("#restore-dry-run", chromedp.ByQuery), chromedp.SendKeys("#restore-to", "alpha_ui", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#restore-confirm").value = ""`, nil), chromedp.SendKeys("#restore-confirm", "alpha", chromedp.ByQuery),
		chromedp.Click("#restore", chromedp.ByQuery))
	b.eventually("clone result", `document.body.innerText.includes("succeeded") && document.body.textContent.includes('"workspace": "alpha_ui"')`, 30*time.Second)
	if got := e.docs("alpha_ui"); got != 2 {
		t.Fatalf("the clone holds %d documents", got)
	}
	b.shot("15-postgres-restore")
	b.checkClean()
}
