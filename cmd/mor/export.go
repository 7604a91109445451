package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/gomor/gomor/mor"
	"github.com/gomor/gomor/training"
)

func init() {
	register(command{
		name:    "export",
		summary: "write a trained vanilla or recursive model as Hugging Face Llama safetensors",
		run:     runExport,
	})
}

// exportFlags are the parsed flags of mor export.
type exportFlags struct {
	run   string
	out   string
	dtype string
}

func parseExportFlags(args []string) (exportFlags, error) {
	var f exportFlags
	flags := flag.NewFlagSet("export", flag.ContinueOnError)
	flags.StringVar(&f.run, "run", "", "run directory (its newest complete checkpoint) or one checkpoint directory (required)")
	flags.StringVar(&f.out, "out", "", "safetensors file to write, replaced atomically (required)")
	flags.StringVar(&f.dtype, "dtype", "F32", "tensor type in the file: F32, BF16 or F16")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: mor export --run DIR --out FILE [--dtype F32|BF16|F16]

Writes the weights of a trained model as a safetensors file with Hugging Face Llama tensor
names and layouts (model.layers.N.self_attn.q_proj.weight, ... with [out, in] Linear weights),
so that other tools can load it as a LlamaForCausalLM of the same depth. Models with tied layers
(recursive baselines) are written unrolled: each unrolled layer gets its own copy of its unique
layer's weights, which computes the same function. The gomor config is stored in the file's
metadata under "gomor_config". Routed (MoR) models are rejected: their routers and gated updates
have no Llama equivalent.

Flags:
`)
		flags.PrintDefaults()
	}
	err := flags.Parse(args)
	if err != nil {
		return f, err
	}
	if flags.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q; mor export takes only flags", flags.Args())
	}
	if f.run == "" {
		return f, errors.New("missing --run: give the run directory of a trained model")
	}
	if f.out == "" {
		return f, errors.New("missing --out: give the safetensors file to write, e.g. --out model.safetensors")
	}
	f.dtype = strings.ToUpper(f.dtype)
	return f, nil
}

func runExport(args []string) error {
	f, err := parseExportFlags(args)
	if err != nil {
		return err // main exits 0 for flag.ErrHelp
	}

	run, err := training.LoadRun(f.run)
	if err != nil {
		return err
	}
	cfg := run.Model.Config
	if cfg.Router != nil {
		return fmt.Errorf("run %s is a routed %s model (preset %q): its routers have no Hugging Face Llama equivalent; export a vanilla or recursive run",
			f.run, cfg.Router.Kind, run.Info.Preset)
	}

	if err := mor.ExportSafetensors(f.out, run.Store, cfg, f.dtype); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d unrolled layers, d_model %d, vocabulary %d, %s, from checkpoint %s\n",
		f.out, cfg.NumLayers, cfg.DModel, cfg.VocabSize, f.dtype, run.Checkpoint.Dir)
	return nil
}
