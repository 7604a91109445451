package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withoutPlugins points the plugin search at an empty folder and unsets GOMLX_BACKEND.
func withoutPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", dir)
	t.Setenv("GOMLX_BACKEND", "")
	return dir
}

// writeBrokenPlugin writes a file that has the plugin's name but is not a shared library.
func writeBrokenPlugin(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "pjrt_c_api_cpu_plugin.so")
	if err := os.WriteFile(path, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatalf("writing %s failed: %v", path, err)
	}
	return path
}

func assertContains(t *testing.T, label, text, substring string) {
	t.Helper()
	if !strings.Contains(text, substring) {
		t.Errorf("%s %q does not contain %q", label, text, substring)
	}
}

func TestSelectWithoutPluginIsGo(t *testing.T) {
	dir := withoutPlugins(t)
	selection, err := Select()
	if err != nil {
		t.Fatalf("Select without plugins failed: %v", err)
	}
	if selection.Config != ConfigGo {
		t.Errorf("Select without plugins chose %q, want %q", selection.Config, ConfigGo)
	}
	assertContains(t, "reason", selection.Reason, dir)
	assertContains(t, "reason", selection.Reason, "scripts/setup")
}

func TestSelectBrokenPluginFallsBack(t *testing.T) {
	path := writeBrokenPlugin(t, withoutPlugins(t))
	selection, err := Select()
	if err != nil {
		t.Fatalf("Select with a broken plugin and GOMLX_BACKEND unset failed: %v", err)
	}
	if selection.Config != ConfigGo {
		t.Errorf("Select with a broken plugin chose %q, want fallback %q", selection.Config, ConfigGo)
	}
	assertContains(t, "reason", selection.Reason, path)
	assertContains(t, "reason", selection.Reason, "failed to load")
}

func TestNewBrokenPluginRequestedFails(t *testing.T) {
	path := writeBrokenPlugin(t, withoutPlugins(t))
	t.Setenv("GOMLX_BACKEND", "xla:cpu")
	b, err := New()
	if err == nil {
		b.Finalize()
		t.Fatalf("New with GOMLX_BACKEND=xla:cpu and a broken plugin succeeded, want an error")
	}
	assertContains(t, "error", err.Error(), path)
	assertContains(t, "error", err.Error(), "GOMLX_BACKEND=go")
}

func TestNewMissingPluginRequestedFails(t *testing.T) {
	withoutPlugins(t)
	t.Setenv("GOMLX_BACKEND", "xla:cpu")
	_, err := New()
	if err == nil {
		t.Fatalf("New with GOMLX_BACKEND=xla:cpu and no plugin succeeded, want an error")
	}
	assertContains(t, "error", err.Error(), "not found")
	assertContains(t, "error", err.Error(), "scripts/setup")
}

func TestNewUnknownBackendFails(t *testing.T) {
	withoutPlugins(t)
	t.Setenv("GOMLX_BACKEND", "tpu")
	_, err := New()
	if err == nil {
		t.Fatalf("New with GOMLX_BACKEND=tpu succeeded, want an error")
	}
	assertContains(t, "error", err.Error(), `"tpu"`)
	assertContains(t, "error", err.Error(), `"xla:cpu"`)
}

func TestNewGoRequested(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "go")
	b, err := New()
	if err != nil {
		t.Fatalf("New with GOMLX_BACKEND=go failed: %v", err)
	}
	defer b.Finalize()
	// "Go Backend" is the name compute v0.1.5's pure-Go backend reports.
	if b.Name() != "Go Backend" {
		t.Errorf("New with GOMLX_BACKEND=go returned backend %q, want \"Go Backend\"", b.Name())
	}
}

func TestSearchPathsFollowEnv(t *testing.T) {
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "/a::/b")
	got := PluginSearchPaths()
	if len(got) != 2 || got[0] != "/a" || got[1] != "/b" {
		t.Errorf("PluginSearchPaths with PJRT_PLUGIN_LIBRARY_PATH=/a::/b = %v, want [/a /b]", got)
	}
}
