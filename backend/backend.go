// Package backend selects the GoMLX compute backend for gomor programs, tests and notebooks.
//
// Selection order:
//
//  1. GOMLX_BACKEND, when set and non-empty, names the backend: "go", "xla:cpu", "xla:cuda",
//     "xla:<absolute path to a PJRT plugin>", optionally followed by go-xla options
//     ("xla:cpu,noshared_buffers").
//  2. Otherwise XLA CUDA when a CUDA PJRT plugin is installed and an NVIDIA device is present,
//     then XLA CPU when its PJRT plugin loads.
//  3. Otherwise the pure-Go backend.
//
// The first selection in a process logs one line on stderr (log/slog) with the backend and the reason.
// GoMLX's PJRT auto-installer is disabled: it downloads from GitHub and would hang without a route.
// scripts/setup installs the plugins instead.
package backend

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"  // registers the pure-Go backend as "go"
	"github.com/gomlx/go-xla/compute/xla" // registers the XLA backend as "xla"
	"k8s.io/klog/v2"
)

// Backend configurations, in the "<backend>[:<config>]" syntax of GOMLX_BACKEND.
const (
	ConfigGo      = "go"
	ConfigXLACPU  = "xla:cpu"
	ConfigXLACUDA = "xla:cuda"
)

func init() {
	xla.EnableAutoInstall(false)
	quietKlog()
}

// quietKlog drops go-xla's klog info and warning lines, which repeat what the errors of this
// package already report (a plugin that fails to load is logged as a warning, then returned as an
// error). klog's errors still reach stderr, through its default ERROR stderr threshold.
func quietKlog() {
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
}

// Selection is the backend configuration that New uses, with the reason it was chosen.
type Selection struct {
	Config string // GOMLX_BACKEND syntax, e.g. "xla:cpu" or "go"
	Reason string // one sentence for the log line and `mor backends`

	// resolved is Config with the plugin name replaced by the plugin's absolute path.
	resolved string
}

// New returns the backend chosen by Select and logs the choice once per process on stderr.
func New() (compute.Backend, error) {
	selection, err := Select()
	if err != nil {
		return nil, err
	}
	logSelection(selection)
	return newFromResolved(selection)
}

// MustNew is New for tests and notebooks: it panics on error.
func MustNew() compute.Backend {
	b, err := New()
	if err != nil {
		panic(err)
	}
	return b
}

// NewWithConfig returns the backend for one configuration in GOMLX_BACKEND syntax ("go", "xla:cpu",
// "xla:cuda", "xla:/path/to/pjrt_c_api_cpu_plugin.so"), without logging.
// It returns an error, never panics, for an unknown backend name or a plugin that is missing or fails to load.
func NewWithConfig(config string) (compute.Backend, error) {
	selection, err := resolve(config, fmt.Sprintf("requested configuration %q", config))
	if err != nil {
		return nil, err
	}
	return newFromResolved(selection)
}

// Select returns the backend configuration New would use, following the order in the package
// documentation. For an XLA choice it loads the PJRT plugin, so a plugin that fails to load is
// skipped (with the reason) when GOMLX_BACKEND is unset and reported as an error when it is set.
func Select() (Selection, error) {
	if config, found := lookupEnv(compute.ConfigEnvVar); found && config != "" {
		return resolve(config, fmt.Sprintf("%s=%s", compute.ConfigEnvVar, config))
	}

	var skipped []string
	for _, candidate := range defaultCandidates() {
		plugin := FindPlugin(candidate.plugin)
		if plugin.Path == "" {
			continue
		}
		if plugin.LoadErr != nil {
			skipped = append(skipped, fmt.Sprintf("%s plugin %s failed to load (%v)", candidate.config, plugin.Path, plugin.LoadErr))
			continue
		}
		return Selection{
			Config:   candidate.config,
			Reason:   fmt.Sprintf("%s unset and the PJRT plugin %s loads (PJRT C API %s)", compute.ConfigEnvVar, plugin.Path, plugin.APIVersion()),
			resolved: "xla:" + plugin.Path,
		}, nil
	}

	reason := fmt.Sprintf("%s unset and no XLA PJRT plugin found in %s; run scripts/setup to install the CPU plugin",
		compute.ConfigEnvVar, strings.Join(PluginSearchPaths(), ":"))
	if len(skipped) > 0 {
		reason = fmt.Sprintf("%s unset and %s; rerun scripts/setup to reinstall it",
			compute.ConfigEnvVar, strings.Join(skipped, "; "))
	}
	return Selection{Config: ConfigGo, Reason: reason, resolved: goConfig("")}, nil
}

// defaultCandidate is an XLA plugin tried, in order, when GOMLX_BACKEND is unset.
type defaultCandidate struct {
	config string
	plugin string
}

// NOTE: the XLA CUDA path (device detection, plugin search in nvidia/, loading) has never run,
// because no machine this was developed on has an NVIDIA GPU.
func defaultCandidates() []defaultCandidate {
	var candidates []defaultCandidate
	if hasNVIDIADevice() {
		candidates = append(candidates, defaultCandidate{config: ConfigXLACUDA, plugin: "cuda"})
	}
	return append(candidates, defaultCandidate{config: ConfigXLACPU, plugin: "cpu"})
}

// resolve validates a GOMLX_BACKEND-style configuration and, for XLA, replaces the plugin name
// by the absolute path of a plugin that loads. source names where the configuration came from.
func resolve(config, source string) (Selection, error) {
	name, rest, _ := strings.Cut(config, ":")
	switch {
	case name == gobackend.BackendName:
		return Selection{Config: config, Reason: source, resolved: goConfig(rest)}, nil

	case isXLAName(name):
		return resolveXLA(config, rest, source)

	default:
		return Selection{}, fmt.Errorf("unknown backend %q in %s: use %q (pure Go), %q or %q, or unset %s to choose automatically",
			name, source, ConfigGo, ConfigXLACPU, ConfigXLACUDA, compute.ConfigEnvVar)
	}
}

// goConfig returns the pure-Go backend configuration for the options after "go:", adding
// ops_sequential unless the options choose an execution mode.
//
// NOTE: compute v0.1.5's pure-Go backend deadlocks in its default mode when a graph runs more
// Sort (or other closure-calling) ops at once than it has workers: each op waits for a worker
// to run its comparator while holding one. Sequential op execution runs the ops on the calling
// goroutine, so no op holds a worker while it waits, and ops still use workers inside (matrix
// products, for instance).
func goConfig(options string) string {
	var parts []string
	if options != "" {
		parts = strings.Split(options, ",")
	}
	if !slices.Contains(parts, "ops_parallel") && !slices.Contains(parts, "ops_sequential") {
		parts = append(parts, "ops_sequential")
	}
	return gobackend.BackendName + ":" + strings.Join(parts, ",")
}

// isXLAName reports whether name is one of the names go-xla registers for its backend.
func isXLAName(name string) bool {
	return slices.Contains([]string{xla.BackendName, "stablehlo", "hlo", "shlo"}, name)
}

// resolveXLA resolves "xla[:<plugin>][,<options>]" to the absolute path of a loadable plugin.
func resolveXLA(config, pluginAndOptions, source string) (Selection, error) {
	pluginName, options, _ := strings.Cut(pluginAndOptions, ",")
	if pluginName == "" {
		pluginName = "cpu"
	}

	plugin := FindPlugin(pluginName)
	if plugin.Path == "" {
		return Selection{}, fmt.Errorf("%s: PJRT plugin %q not found in %s; run scripts/setup (add --cuda for the CUDA plugin), "+
			"set PJRT_PLUGIN_LIBRARY_PATH to the folder that contains pjrt_c_api_%s_plugin.so, or use %s=%s",
			source, pluginName, strings.Join(PluginSearchPaths(), ":"), pluginName, compute.ConfigEnvVar, ConfigGo)
	}
	if plugin.LoadErr != nil {
		return Selection{}, fmt.Errorf("%s: PJRT plugin %s failed to load: %w; rerun scripts/setup to reinstall it, or use %s=%s",
			source, plugin.Path, plugin.LoadErr, compute.ConfigEnvVar, ConfigGo)
	}

	resolved := "xla:" + plugin.Path
	if options != "" {
		resolved += "," + options
	}
	return Selection{
		Config:   config,
		Reason:   fmt.Sprintf("%s, PJRT plugin %s (PJRT C API %s)", source, plugin.Path, plugin.APIVersion()),
		resolved: resolved,
	}, nil
}

// newFromResolved creates the backend. compute.NewWithConfig panics on some invalid
// configurations, so the panic is turned into an error that names the configuration.
func newFromResolved(selection Selection) (b compute.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("creating backend %q (%s) failed: %v", selection.Config, selection.resolved, r)
		}
	}()

	b, err = compute.NewWithConfig(selection.resolved)
	if err != nil {
		return nil, fmt.Errorf("creating backend %q (%s) failed: %w; use %s=%s to run on pure Go",
			selection.Config, selection.resolved, err, compute.ConfigEnvVar, ConfigGo)
	}
	return b, nil
}

var loggedSelections sync.Map // Selection.Config + Reason -> struct{}

// logSelection writes one stderr line per distinct selection in this process.
func logSelection(selection Selection) {
	if _, seen := loggedSelections.LoadOrStore(selection.Config+"\x00"+selection.Reason, struct{}{}); seen {
		return
	}
	slog.Info("gomor backend", "backend", selection.Config, "reason", selection.Reason)
}
