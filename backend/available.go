package backend

import (
	"github.com/gomlx/compute"
)

// Candidate is one backend configuration this machine may run, as listed by `mor backends`.
type Candidate struct {
	Config    string  // GOMLX_BACKEND syntax: "go", "xla:cpu", "xla:cuda"
	Plugin    *Plugin // the PJRT plugin for XLA configurations; nil for pure Go
	Available bool    // whether NewWithConfig(Config) is expected to succeed
	Reason    string  // the cause when unavailable; empty when available
}

// Candidates lists pure Go, XLA CPU and XLA CUDA with whether each is available here.
// XLA CUDA is listed as unavailable without an NVIDIA device even if its plugin is installed.
func Candidates() []Candidate {
	candidates := []Candidate{{Config: ConfigGo, Available: true}}
	for _, config := range []string{ConfigXLACPU, ConfigXLACUDA} {
		candidates = append(candidates, xlaCandidate(config))
	}
	return candidates
}

func xlaCandidate(config string) Candidate {
	name := config[len("xla:"):]
	if name == "cuda" && !hasNVIDIADevice() {
		return Candidate{Config: config, Reason: "no NVIDIA device (/dev/nvidia0 missing)"}
	}

	plugin := FindPlugin(name)
	candidate := Candidate{Config: config, Plugin: &plugin}
	switch {
	case plugin.Path == "":
		candidate.Reason = "PJRT plugin " + pluginFileName(name) + " not found; run scripts/setup" + cudaFlag(name)
	case plugin.LoadErr != nil:
		candidate.Reason = "PJRT plugin failed to load: " + plugin.LoadErr.Error()
	default:
		candidate.Available = true
	}
	return candidate
}

func cudaFlag(name string) string {
	if name == "cuda" {
		return " --cuda"
	}
	return ""
}

// AvailableConfigs returns the configurations of the available candidates, pure Go first.
func AvailableConfigs() []string {
	var configs []string
	for _, candidate := range Candidates() {
		if candidate.Available {
			configs = append(configs, candidate.Config)
		}
	}
	return configs
}

// Registered lists the backend names compiled into this binary (e.g. "go", "xla").
func Registered() []string {
	return compute.List()
}
