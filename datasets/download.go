package datasets

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DownloadFile is one file of the standard corpora or tasks.
type DownloadFile struct {
	// Path is the file's location under the data folder, with forward slashes.
	// A mirror serves it at the same path under its base URL.
	Path string
	// URL is the upstream location used without a mirror; empty when the file
	// is only available from a mirror.
	URL string
	// SHA256 is the expected hex sha256 of the file; empty when unknown.
	SHA256 string
	// GitBlobSHA1 is the expected git blob id, sha1("blob <size>\x00" + content),
	// for files listed by git object id; empty when unknown.
	GitBlobSHA1 string
}

// EnvDownloadURL names the environment variable that sets the mirror base URL.
const EnvDownloadURL = "GOMOR_DOWNLOAD_URL"

// Downloader fetches DownloadFiles into a data folder. Each file is written to
// "<name>.part", checked, then renamed into place, so the destination path
// only ever holds a complete, verified file. A ".part" left by an interrupted
// transfer is resumed with an HTTP range request.
type Downloader struct {
	// BaseURL, when set, is a mirror that serves every file at BaseURL/Path,
	// in the layout of the data folder.
	BaseURL string
	// Dest is the data folder.
	Dest string
	// Client performs the requests. If nil, a client that waits at most a
	// minute for response headers but has no limit on the body's duration.
	Client *http.Client
	// Logf, when set, receives one line per file and progress on large files.
	Logf func(format string, args ...any)
}

// DownloadStatus is the outcome of Fetch for one file.
type DownloadStatus string

const (
	DownloadFetched DownloadStatus = "fetched"
	DownloadPresent DownloadStatus = "present" // already in place and, where a checksum is known, verified
)

// SourceURL returns the URL Fetch reads file from.
func (d *Downloader) SourceURL(file DownloadFile) (string, error) {
	if d.BaseURL == "" {
		if file.URL == "" {
			return "", fmt.Errorf("%s is only available from a mirror; set --base-url or %s", file.Path, EnvDownloadURL)
		}
		return file.URL, nil
	}
	base, err := url.Parse(d.BaseURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return "", fmt.Errorf("invalid base URL %q; expected an absolute URL such as https://mirror.example/gomor-data", d.BaseURL)
	}
	return strings.TrimRight(d.BaseURL, "/") + "/" + escapePath(file.Path), nil
}

// escapePath escapes each segment of a slash-separated path for a URL.
func escapePath(path string) string {
	segments := strings.Split(path, "/")
	for i, segment := range segments {
		segments[i] = url.PathEscape(segment)
	}
	return strings.Join(segments, "/")
}

// Fetch downloads one file unless it is already in place.
func (d *Downloader) Fetch(ctx context.Context, file DownloadFile) (DownloadStatus, error) {
	dest := filepath.Join(d.Dest, filepath.FromSlash(file.Path))
	if _, err := os.Stat(dest); err == nil {
		if err := verifyFile(dest, file); err != nil {
			return "", fmt.Errorf("%w; delete %s to download it again", err, dest)
		}
		return DownloadPresent, nil
	}

	source, err := d.SourceURL(file)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", file.Path, err)
	}

	part := dest + ".part"
	if err := d.transfer(ctx, source, part); err != nil {
		return "", err
	}
	if err := verifyFile(part, file); err != nil {
		os.Remove(part)
		return "", fmt.Errorf("%w; the partial file was deleted and nothing was written to %s", err, dest)
	}
	if err := os.Rename(part, dest); err != nil {
		return "", fmt.Errorf("download %s: %w", file.Path, err)
	}
	return DownloadFetched, nil
}

func (d *Downloader) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: transport}
}

// transfer fetches source into part, resuming from part's current size when
// the server honours range requests, and restarting otherwise.
func (d *Downloader) transfer(ctx context.Context, source, part string) error {
	offset := int64(0)
	if info, err := os.Stat(part); err == nil {
		offset = info.Size()
	}

	response, err := d.get(ctx, source, offset)
	if err != nil {
		return err
	}
	defer response.Body.Close()

	if response.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0 {
		// The partial file is as long as the source or longer: start over.
		response.Body.Close()
		os.Remove(part)
		return d.transfer(ctx, source, part)
	}

	flags := os.O_CREATE | os.O_WRONLY
	switch {
	case response.StatusCode == http.StatusPartialContent && offset > 0:
		if err := checkContentRange(response, offset); err != nil {
			return fmt.Errorf("download %s: %w", source, err)
		}
		flags |= os.O_APPEND
	case response.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		offset = 0
	default:
		return fmt.Errorf("download %s: server returned %s; check the URL or the mirror's layout", source, response.Status)
	}

	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("download %s: %w", source, err)
	}
	written, copyErr := io.Copy(out, d.progressReader(response.Body, source, offset, response.ContentLength))
	closeErr := out.Close()

	if copyErr != nil || (response.ContentLength >= 0 && written != response.ContentLength) {
		expected := "an unknown number of"
		if response.ContentLength >= 0 {
			expected = strconv.FormatInt(offset+response.ContentLength, 10)
		}
		return fmt.Errorf("download %s: truncated after %d of %s bytes (%v); run the command again to resume from %s",
			source, offset+written, expected, copyErr, part)
	}
	if closeErr != nil {
		return fmt.Errorf("download %s: %w", source, closeErr)
	}
	return nil
}

// get sends a GET, with a Range header when resuming from offset.
func (d *Downloader) get(ctx context.Context, source string, offset int64) (*http.Response, error) {
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", source, err)
	}
	if offset > 0 {
		request.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	response, err := d.client().Do(request)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", source, err)
	}
	return response, nil
}

// checkContentRange checks that a 206 response starts where the partial file ends.
func checkContentRange(response *http.Response, offset int64) error {
	contentRange := response.Header.Get("Content-Range") // "bytes 100-199/200"
	var start, end, total int64
	if _, err := fmt.Sscanf(contentRange, "bytes %d-%d/%d", &start, &end, &total); err != nil {
		return fmt.Errorf("invalid Content-Range %q in a partial response", contentRange)
	}
	if start != offset {
		return fmt.Errorf("server resumed at byte %d, expected %d", start, offset)
	}
	return nil
}

// progressReader logs every 64 MiB read when a logger is set.
func (d *Downloader) progressReader(body io.Reader, source string, offset, remaining int64) io.Reader {
	if d.Logf == nil {
		return body
	}
	return &progressLogger{reader: body, logf: d.Logf, source: source, done: offset, total: offset + remaining}
}

type progressLogger struct {
	reader      io.Reader
	logf        func(string, ...any)
	source      string
	done, total int64
	lastLogged  int64
}

func (p *progressLogger) Read(buf []byte) (int, error) {
	n, err := p.reader.Read(buf)
	p.done += int64(n)
	if p.done-p.lastLogged >= 64<<20 {
		p.lastLogged = p.done
		if p.total > 0 {
			p.logf("  %s: %d of %d MiB", p.source, p.done>>20, p.total>>20)
		} else {
			p.logf("  %s: %d MiB", p.source, p.done>>20)
		}
	}
	return n, err
}

// verifyFile checks a file against the checksums known for it.
func verifyFile(path string, file DownloadFile) error {
	if file.SHA256 == "" && file.GitBlobSHA1 == "" {
		return nil
	}
	if file.SHA256 != "" {
		computed, err := hashFile(path, sha256.New(), "")
		if err != nil {
			return err
		}
		if computed != file.SHA256 {
			return fmt.Errorf("checksum mismatch for %s: sha256 %s, expected %s", file.Path, computed, file.SHA256)
		}
	}
	if file.GitBlobSHA1 != "" {
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		computed, err := hashFile(path, sha1.New(), fmt.Sprintf("blob %d\x00", info.Size()))
		if err != nil {
			return err
		}
		if computed != file.GitBlobSHA1 {
			return fmt.Errorf("checksum mismatch for %s: git blob id %s, expected %s", file.Path, computed, file.GitBlobSHA1)
		}
	}
	return nil
}

// hashFile returns the hex digest of prefix followed by the file's content.
func hashFile(path string, digest hash.Hash, prefix string) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	digest.Write([]byte(prefix))
	if _, err := io.Copy(digest, in); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(digest.Sum(nil)), nil
}

// errNoManifest is returned for the Gutenberg subset without a manifest.
var errNoManifest = errors.New("the Gutenberg subset is listed in gutenberg/MANIFEST.tsv; set --base-url to a mirror that serves it, or pass --manifest with a local copy")

// FetchAll fetches files in order and stops at the first error.
func (d *Downloader) FetchAll(ctx context.Context, files []DownloadFile) (fetched, present int, err error) {
	for _, file := range files {
		status, err := d.Fetch(ctx, file)
		if err != nil {
			return fetched, present, err
		}
		if status == DownloadFetched {
			fetched++
		} else {
			present++
		}
		if d.Logf != nil {
			d.Logf("%s %s", status, file.Path)
		}
	}
	return fetched, present, nil
}

// FetchGutenbergManifest fetches gutenberg/MANIFEST.tsv from the mirror and
// returns its local path, for DownloadCatalog's fetchManifest argument.
func (d *Downloader) FetchGutenbergManifest(ctx context.Context) (string, error) {
	if d.BaseURL == "" {
		return "", errNoManifest
	}
	if _, err := d.Fetch(ctx, GutenbergManifestFile); err != nil {
		return "", err
	}
	return filepath.Join(d.Dest, filepath.FromSlash(GutenbergManifestFile.Path)), nil
}
