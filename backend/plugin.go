package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gomlx/go-xla/pjrt"
)

// Plugin describes a PJRT plugin found on this machine.
type Plugin struct {
	Name     string // "cpu" or "cuda"
	Path     string // absolute path of the shared library; empty when not found
	APIMajor int    // PJRT C API version the plugin reports once loaded
	APIMinor int
	LoadErr  error // the loading failure; nil when the plugin loaded or was not found
}

// APIVersion formats the PJRT C API version as "major.minor".
func (p Plugin) APIVersion() string {
	return fmt.Sprintf("%d.%d", p.APIMajor, p.APIMinor)
}

// HeaderAPIVersion is the PJRT C API version of the headers go-xla v0.4.4 is compiled against
// (PJRT_API_MAJOR and PJRT_API_MINOR in its pjrt_c_api.h).
const HeaderAPIVersion = "0.104"

// PluginSearchPaths lists the folders searched for pjrt_c_api_<name>_plugin.so, in order:
// the folders in PJRT_PLUGIN_LIBRARY_PATH (":"-separated) when it is set, else
// $HOME/.local/lib/go-xla (where scripts/setup installs) and /usr/local/lib/go-xla, each
// followed by its nvidia/ subfolder, where go-xla's layout keeps the CUDA plugin.
func PluginSearchPaths() []string {
	if value, found := lookupEnv(pjrt.PJRTPluginPathsEnv); found {
		var paths []string
		for _, path := range strings.Split(value, ":") {
			if path != "" {
				paths = append(paths, path)
			}
		}
		return paths
	}

	var roots []string
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".local", "lib", "go-xla"))
	}
	roots = append(roots, "/usr/local/lib/go-xla")

	var paths []string
	for _, root := range roots {
		paths = append(paths, root, filepath.Join(root, "nvidia"))
	}
	return paths
}

// pluginFileName is the file name go-xla expects for a plugin called name.
func pluginFileName(name string) string {
	return fmt.Sprintf("pjrt_c_api_%s_plugin.so", name)
}

var (
	pluginsMu sync.Mutex
	plugins   = map[string]Plugin{} // by absolute path; a plugin is loaded at most once per process
)

// FindPlugin searches PluginSearchPaths for the plugin called name ("cpu", "cuda"), or takes name
// as the path when it is absolute, and loads it to read its PJRT C API version.
// Path is empty when no file was found, and LoadErr is set when the file failed to load.
// Loading is cached per process, because a PJRT plugin cannot be unloaded.
func FindPlugin(name string) Plugin {
	path := name
	if !filepath.IsAbs(name) {
		path = searchPlugin(name)
		if path == "" {
			return Plugin{Name: name}
		}
	}

	pluginsMu.Lock()
	defer pluginsMu.Unlock()
	if plugin, found := plugins[path]; found {
		return plugin
	}
	plugin := loadPlugin(name, path)
	plugins[path] = plugin
	return plugin
}

func searchPlugin(name string) string {
	for _, folder := range PluginSearchPaths() {
		path := filepath.Join(folder, pluginFileName(name))
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			absolute, err := filepath.Abs(path)
			if err != nil {
				return path
			}
			return absolute
		}
	}
	return ""
}

// loadPlugin dlopens the plugin through go-xla and reads its PJRT C API version.
// go-xla panics on some malformed libraries, so a panic becomes LoadErr.
func loadPlugin(name, path string) (plugin Plugin) {
	plugin = Plugin{Name: name, Path: path}
	defer func() {
		if r := recover(); r != nil {
			plugin.LoadErr = fmt.Errorf("panic while loading: %v", r)
		}
	}()

	if _, err := os.Stat(path); err != nil {
		plugin.LoadErr = err
		return plugin
	}
	loaded, err := pjrt.GetPlugin(path)
	if err != nil {
		plugin.LoadErr = err
		return plugin
	}
	plugin.APIMajor, plugin.APIMinor = loaded.Version()
	return plugin
}

// hasNVIDIADevice reports whether the NVIDIA kernel driver exposes a device, the
// precondition for trying the CUDA plugin by default.
func hasNVIDIADevice() bool {
	_, err := os.Stat("/dev/nvidia0")
	return err == nil
}
