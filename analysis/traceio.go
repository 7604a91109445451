package analysis

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// SaveTraces writes traces as JSON (NaN scores and losses as null), creating
// the folder when missing. LoadTraces reads the file back.
func SaveTraces(path string, traces []Trace) error {
	data, err := MarshalIndentSafe(traces)
	if err != nil {
		return fmt.Errorf("encoding traces: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving traces: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving traces: %w", err)
	}
	return nil
}

// LoadTraces reads traces written by SaveTraces or by WriteReport (traces.json)
// and validates each one.
func LoadTraces(path string) ([]Trace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading traces: %w", err)
	}
	var traces []Trace
	if err := json.Unmarshal(data, &traces); err != nil {
		return nil, fmt.Errorf("%s does not contain traces: %w", path, err)
	}
	for _, tr := range traces {
		if err := tr.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return traces, nil
}
