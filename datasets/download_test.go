package datasets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomor/gomor/internal/testutil"
)

// fixtureServer serves testdata/download on a loopback address. Its mode
// selects the behaviour: "normal" (range requests honoured), "truncate"
// (declares the full length, sends half), "no-range" (ignores Range) or
// "tampered" (serves other bytes).
type fixtureServer struct {
	*httptest.Server
	mu     sync.Mutex
	mode   string
	ranges []string // Range header of each request, "" when absent
}

func newFixtureServer(t *testing.T) *fixtureServer {
	t.Helper()
	server := &fixtureServer{mode: "normal"}
	server.Server = httptest.NewServer(http.HandlerFunc(server.serve))
	t.Cleanup(server.Close)
	return server
}

func (s *fixtureServer) setMode(mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
}

func (s *fixtureServer) requestRanges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *fixtureServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	mode := s.mode
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()

	content, err := os.ReadFile(filepath.Join("testdata", "download", filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch mode {
	case "truncate":
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Write(content[:len(content)/2])
	case "no-range":
		w.Write(content)
	case "tampered":
		w.Write(bytes.ToUpper(content))
	default:
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
	}
}

func fixtureSHA256(t *testing.T, path string) string {
	t.Helper()
	content, err := os.ReadFile(filepath.Join("testdata", "download", path))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

func assertFileContent(t *testing.T, path, fixture string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	expected, _ := os.ReadFile(filepath.Join("testdata", "download", fixture))
	if !bytes.Equal(got, expected) {
		t.Errorf("%s = %q, expected %q", path, got, expected)
	}
}

func assertMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s exists, expected no file", path)
	}
}

func TestDownloadFromMirror(t *testing.T) {
	server := newFixtureServer(t)
	dest := t.TempDir()
	downloader := &Downloader{BaseURL: server.URL + "/", Dest: dest}
	file := DownloadFile{Path: "eval/piqa.jsonl", SHA256: fixtureSHA256(t, "eval/piqa.jsonl")}

	status, err := downloader.Fetch(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if status != DownloadFetched {
		t.Errorf("status = %s, expected %s", status, DownloadFetched)
	}
	target := filepath.Join(dest, "eval", "piqa.jsonl")
	assertFileContent(t, target, "eval/piqa.jsonl")
	assertMissing(t, target+".part")

	status, err = downloader.Fetch(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if status != DownloadPresent {
		t.Errorf("second fetch status = %s, expected %s", status, DownloadPresent)
	}
	if requests := len(server.requestRanges()); requests != 1 {
		t.Errorf("%d requests, expected 1 (the second fetch finds the file in place)", requests)
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	server := newFixtureServer(t)
	dest := t.TempDir()
	downloader := &Downloader{BaseURL: server.URL, Dest: dest}
	file := DownloadFile{Path: "eval/piqa.jsonl", SHA256: strings.Repeat("0", 64)}

	_, err := downloader.Fetch(context.Background(), file)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch for eval/piqa.jsonl") {
		t.Fatalf("error = %v, expected a checksum mismatch naming the file", err)
	}
	target := filepath.Join(dest, "eval", "piqa.jsonl")
	assertMissing(t, target)
	assertMissing(t, target+".part")
}

func TestDownloadTruncatedThenResumed(t *testing.T) {
	server := newFixtureServer(t)
	dest := t.TempDir()
	downloader := &Downloader{BaseURL: server.URL, Dest: dest}
	file := DownloadFile{Path: "eval/piqa.jsonl", SHA256: fixtureSHA256(t, "eval/piqa.jsonl")}
	target := filepath.Join(dest, "eval", "piqa.jsonl")

	server.setMode("truncate")
	_, err := downloader.Fetch(context.Background(), file)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("error = %v, expected a truncated download", err)
	}
	assertMissing(t, target)
	fixture, _ := os.ReadFile(filepath.Join("testdata", "download", "eval", "piqa.jsonl"))
	half := len(fixture) / 2
	info, err := os.Stat(target + ".part")
	if err != nil || info.Size() != int64(half) {
		t.Fatalf("partial file: %v, size %v; expected %d bytes kept for resuming", err, info, half)
	}

	server.setMode("normal")
	if _, err := downloader.Fetch(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	assertFileContent(t, target, "eval/piqa.jsonl")
	assertMissing(t, target+".part")
	ranges := server.requestRanges()
	if expected := "bytes=" + strconv.Itoa(half) + "-"; ranges[len(ranges)-1] != expected {
		t.Errorf("resume request Range = %q, expected %q", ranges[len(ranges)-1], expected)
	}
}

func TestDownloadResumeWithoutRangeSupport(t *testing.T) {
	server := newFixtureServer(t)
	server.setMode("no-range")
	dest := t.TempDir()
	target := filepath.Join(dest, "eval", "piqa.jsonl")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, target+".part", "stale bytes from another attempt")

	downloader := &Downloader{BaseURL: server.URL, Dest: dest}
	file := DownloadFile{Path: "eval/piqa.jsonl", SHA256: fixtureSHA256(t, "eval/piqa.jsonl")}
	if _, err := downloader.Fetch(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	assertFileContent(t, target, "eval/piqa.jsonl")
}

func TestDownloadNotFound(t *testing.T) {
	server := newFixtureServer(t)
	downloader := &Downloader{BaseURL: server.URL, Dest: t.TempDir()}
	_, err := downloader.Fetch(context.Background(), DownloadFile{Path: "eval/missing.jsonl"})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("error = %v, expected the 404 status", err)
	}
}

func TestDownloadGutenbergFromMirror(t *testing.T) {
	server := newFixtureServer(t)
	dest := t.TempDir()
	downloader := &Downloader{BaseURL: server.URL, Dest: dest}
	ctx := context.Background()

	files, err := DownloadCatalog("gutenberg", CatalogOptions{}, func() (string, error) { return downloader.FetchGutenbergManifest(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d books in the manifest, expected 1", len(files))
	}
	expectedURL := gutenbergRaw + "Somebody%2C%20A./A%20Book:%20With%20Colon.txt"
	if files[0].URL != expectedURL {
		t.Errorf("upstream URL = %q, expected %q", files[0].URL, expectedURL)
	}

	fetched, _, err := downloader.FetchAll(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	if fetched != 1 {
		t.Errorf("fetched %d books, expected 1", fetched)
	}
	assertFileContent(t, filepath.Join(dest, filepath.FromSlash(files[0].Path)), files[0].Path)

	// The same book with other bytes fails its git blob id.
	os.Remove(filepath.Join(dest, filepath.FromSlash(files[0].Path)))
	server.setMode("tampered")
	_, err = downloader.Fetch(ctx, files[0])
	if err == nil || !strings.Contains(err.Error(), "git blob id") {
		t.Errorf("tampered book: error = %v, expected a git blob id mismatch", err)
	}
}

func TestDownloadSourceURL(t *testing.T) {
	upstream := &Downloader{}
	piqa, err := DownloadCatalog("piqa", CatalogOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := upstream.SourceURL(piqa[0]); err != nil || got != llmFoundryRaw+"commonsense_reasoning/piqa.jsonl" {
		t.Errorf("upstream URL = %q, %v", got, err)
	}

	mirror := &Downloader{BaseURL: "http://127.0.0.1:9/data/"}
	if got, _ := mirror.SourceURL(piqa[0]); got != "http://127.0.0.1:9/data/eval/piqa.jsonl" {
		t.Errorf("mirror URL = %q, expected http://127.0.0.1:9/data/eval/piqa.jsonl", got)
	}

	tokenizers, err := DownloadCatalog("tokenizers", CatalogOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.SourceURL(tokenizers[0]); err == nil || !strings.Contains(err.Error(), "only available from a mirror") {
		t.Errorf("tokenizer without a mirror: error = %v", err)
	}

	if _, err := DownloadCatalog("gutenberg", CatalogOptions{}, nil); err == nil || !strings.Contains(err.Error(), "--manifest") {
		t.Errorf("gutenberg without a manifest: error = %v", err)
	}
}

func TestDownloadCatalogCounts(t *testing.T) {
	cases := map[string]int{"tasks": 11 + 67, "blimp": 67, "tinystories": 2, "fineweb-edu": 1}
	for name, count := range cases {
		files, err := DownloadCatalog(name, CatalogOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != count {
			t.Errorf("%s: %d files, expected %d", name, len(files), count)
		}
	}
	if _, err := DownloadCatalog("fineweb-edu", CatalogOptions{FineWebShards: 15}, nil); err == nil {
		t.Errorf("15 FineWeb-Edu shards accepted, expected an error")
	}
}

// TestDownloadCatalogMatchesData checks the recorded checksums against the
// development copies of the task files.
func TestDownloadCatalogMatchesData(t *testing.T) {
	dataDir := testutil.DataDir(t)
	files, err := DownloadCatalog("tasks", CatalogOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizers", "tinyshakespeare"} {
		more, _ := DownloadCatalog(name, CatalogOptions{}, nil)
		files = append(files, more...)
	}
	for _, file := range files {
		if err := verifyFile(filepath.Join(dataDir, filepath.FromSlash(file.Path)), file); err != nil {
			t.Errorf("%s: %v", file.Path, err)
		}
	}
}
