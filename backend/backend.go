// Package backend selects the GoMLX compute backend for gomor programs, tests and notebooks.
package backend

import (
	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // registers the pure-Go backend as "go"
)

// New returns the backend named by GOMLX_BACKEND, or the pure-Go backend when it is unset.
//
// TODO: prefer XLA CPU when its PJRT plugin loads, and report the choice on stderr.
func New() (compute.Backend, error) {
	return compute.NewWithConfig(configFromEnv())
}

// MustNew is New for tests and notebooks: it panics on error.
func MustNew() compute.Backend {
	b, err := New()
	if err != nil {
		panic(err)
	}
	return b
}

func configFromEnv() string {
	if config, found := lookupEnv(compute.ConfigEnvVar); found && config != "" {
		return config
	}
	return "go"
}
