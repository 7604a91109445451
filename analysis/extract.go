package analysis

import (
	"fmt"
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/gomor/gomor/datasets"
	"github.com/gomor/gomor/mor"
)

// ExtractOptions controls how ExtractTraces runs the model.
type ExtractOptions struct {
	// Routing is RoutingTopK (the default) or RoutingCausal.
	Routing string

	// MaxDepth caps the recursion steps; 0 means N_r.
	MaxDepth int

	// CausalScore picks which router the causal mode thresholds: mor.CausalScoreRouter
	// (the default) or the auxiliary router's score.
	CausalScore string

	// Threshold is the causal-mode score a token needs to continue; 0 means the
	// router's own threshold (0.5 for sigmoid scores, 0 for tanh).
	Threshold float64

	// SeqLen is the row length in tokens: longer texts are cut into rows of this
	// length and the last row keeps the remainder. 0 means the config's max_seq_len.
	SeqLen int

	// BatchSize is the number of rows of equal length run together; 0 means 8.
	BatchSize int
}

// ExtractTraces runs a MoR model over texts and returns one trace per row,
// named "text i" or "text i, row j" when a text spans several rows. Variables
// are read from store, which must hold a model of cfg (for example restored
// from a checkpoint). Depth and selection come from the model's own routing
// records, and Loss is the next-token cross-entropy at each position.
func ExtractTraces(backend compute.Backend, store *model.Store, cfg mor.Config, tokenizer datasets.Tokenizer, texts []string, options ExtractOptions) ([]Trace, error) {
	options, err := options.withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	var rows [][]int32
	var names []string
	for i, text := range texts {
		ids := tokenizer.Encode(text)
		if len(ids) < 2 {
			return nil, fmt.Errorf("text %d has %d tokens; a trace needs at least 2 so that one next-token loss exists", i, len(ids))
		}
		textRows := splitRows(ids, options.SeqLen)
		for j, row := range textRows {
			rows = append(rows, row)
			if len(textRows) == 1 {
				names = append(names, fmt.Sprintf("text %d", i))
			} else {
				names = append(names, fmt.Sprintf("text %d, row %d", i, j))
			}
		}
	}
	return ExtractRowTraces(backend, store, cfg, rows, names, tokenizer.Decode, options)
}

// ExtractRowTraces runs the model over token rows, such as packed validation
// rows, and returns one trace per row. Rows of equal length run in batches.
// names may be nil; decode turns one id into its text (it may be nil, which
// leaves Text empty).
func ExtractRowTraces(backend compute.Backend, store *model.Store, cfg mor.Config, rows [][]int32, names []string,
	decode func([]int) string, options ExtractOptions) ([]Trace, error) {
	options, err := options.withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Router == nil {
		return nil, fmt.Errorf("model %q has no router, so it has no routing to trace: pick a MoR config (router set)", cfg.Name)
	}

	extractor := &traceExtractor{backend: backend, store: store, cfg: cfg, options: options, execs: map[int]*model.Exec{}}
	defer extractor.finalize()

	traces := make([]Trace, len(rows))
	for _, group := range groupByLength(rows, options.BatchSize) {
		batch := make([][]int32, len(group))
		for i, index := range group {
			batch[i] = rows[index]
		}
		batchTraces, err := extractor.run(batch)
		if err != nil {
			return nil, err
		}
		for i, index := range group {
			trace := batchTraces[i]
			trace.Name = fmt.Sprintf("row %d", index)
			if index < len(names) {
				trace.Name = names[index]
			}
			if decode != nil {
				for p := range trace.Tokens {
					trace.Tokens[p].Text = decode([]int{trace.Tokens[p].ID})
				}
			}
			traces[index] = trace
		}
	}
	return traces, nil
}

func (o ExtractOptions) withDefaults(cfg mor.Config) (ExtractOptions, error) {
	if o.Routing == "" {
		o.Routing = RoutingTopK
	}
	if o.Routing != RoutingTopK && o.Routing != RoutingCausal {
		return o, fmt.Errorf("routing mode %q is invalid: use %q or %q", o.Routing, RoutingTopK, RoutingCausal)
	}
	if o.CausalScore == "" {
		o.CausalScore = mor.CausalScoreRouter
	}
	if o.Threshold == 0 && cfg.Router != nil {
		o.Threshold = cfg.Router.ScoreThreshold()
	}
	if o.SeqLen <= 0 {
		o.SeqLen = cfg.MaxSeqLen
	}
	if o.SeqLen < 2 {
		return o, fmt.Errorf("row length %d is too short: set ExtractOptions.SeqLen or the config's max_seq_len to at least 2", o.SeqLen)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 8
	}
	return o, nil
}

// splitRows cuts ids into rows of at most seqLen tokens. A last row of a
// single token is merged into nothing (it has no next token to predict) and dropped.
func splitRows(ids []int, seqLen int) [][]int32 {
	var rows [][]int32
	for start := 0; start < len(ids); start += seqLen {
		end := min(start+seqLen, len(ids))
		if end-start < 2 {
			break
		}
		row := make([]int32, end-start)
		for i := range row {
			row[i] = int32(ids[start+i])
		}
		rows = append(rows, row)
	}
	return rows
}

// groupByLength returns the row indices grouped into batches of equal row
// length, at most batchSize each, in first-seen order.
func groupByLength(rows [][]int32, batchSize int) [][]int {
	var order []int
	byLength := map[int][]int{}
	for i, row := range rows {
		if _, seen := byLength[len(row)]; !seen {
			order = append(order, len(row))
		}
		byLength[len(row)] = append(byLength[len(row)], i)
	}
	var groups [][]int
	for _, length := range order {
		indices := byLength[length]
		for start := 0; start < len(indices); start += batchSize {
			groups = append(groups, indices[start:min(start+batchSize, len(indices))])
		}
	}
	return groups
}

// traceExtractor compiles one graph per batch shape and turns its outputs into traces.
type traceExtractor struct {
	backend compute.Backend
	store   *model.Store
	cfg     mor.Config
	options ExtractOptions
	execs   map[int]*model.Exec // by row length; GoMLX also caches per batch size
}

func (e *traceExtractor) finalize() {
	for _, exec := range e.execs {
		exec.Finalize()
	}
}

// outputsPerStep is the number of graph outputs of each recursion step (see graphFn).
const outputsPerStep = 4

// graphFn returns, for tokens [B, L], the next-token loss [B, L−1] and the
// depth [B, L]. Then, for each recursion step, it returns the positions its
// scores belong to [B, K] int32, those scores [B, K], and the candidate and
// active masks [B, L] as float32. Paths whose step records have no Candidates
// (masked, causal and token-choice routing) score all L positions, so their
// positions are 0..L−1.
func (e *traceExtractor) graphFn(scope *model.Scope, tokens *graph.Node) []*graph.Node {
	out := mor.Forward(scope, e.cfg, tokens, mor.ForwardOptions{
		Routing:     mor.RoutingMode(e.options.Routing),
		CausalScore: e.options.CausalScore,
		Threshold:   e.options.Threshold,
		MaxDepth:    e.options.MaxDepth,
	})
	outputs := []*graph.Node{tokenLosses(out.Logits, tokens), graph.ConvertDType(out.Depth, dtypes.Int32)}
	allPositions := graph.Iota(tokens.Graph(), shapes.Make(dtypes.Int32, tokens.Shape().Dimensions...), 1) // [B, L]
	for _, step := range out.Steps {
		scored := allPositions
		if step.Candidates != nil {
			scored = step.Candidates
		}
		outputs = append(outputs,
			graph.ConvertDType(scored, dtypes.Int32),
			graph.ConvertDType(step.Scores, dtypes.Float32),
			graph.ConvertDType(step.CandidateMask, dtypes.Float32),
			graph.ConvertDType(step.Active, dtypes.Float32))
	}
	return outputs
}

// tokenLosses returns −log p(token t+1 | tokens ≤ t) for t = 0..L−2, [B, L−1] float32.
func tokenLosses(logits, tokens *graph.Node) *graph.Node {
	seqLen, vocab := tokens.Shape().Dim(1), logits.Shape().Dim(2)
	predictions := graph.Slice(logits, graph.AxisRange(), graph.AxisRange(0, seqLen-1)) // [B, L−1, V]
	targets := graph.Slice(tokens, graph.AxisRange(), graph.AxisRange(1, seqLen))       // [B, L−1]
	logProbs := graph.LogSoftmax(graph.ConvertDType(predictions, dtypes.Float32), -1)
	targetMask := graph.OneHot(targets, vocab, dtypes.Float32) // [B, L−1, V]
	return graph.Neg(graph.ReduceSum(graph.Mul(logProbs, targetMask), -1))
}

// run executes one batch of equal-length rows and decodes the outputs.
func (e *traceExtractor) run(rows [][]int32) ([]Trace, error) {
	seqLen := len(rows[0])
	exec, found := e.execs[seqLen]
	if !found {
		var err error
		exec, err = model.NewExec(e.backend, e.store, e.graphFn)
		if err != nil {
			return nil, fmt.Errorf("compiling the trace graph: %w", err)
		}
		e.execs[seqLen] = exec
	}

	flat := make([]int32, 0, len(rows)*seqLen)
	for _, row := range rows {
		flat = append(flat, row...)
	}
	var outputs []*tensors.Tensor
	var callErr error
	if panicErr := exceptions.TryCatch[error](func() {
		outputs, callErr = exec.Call(tensors.FromFlatDataAndDimensions(flat, len(rows), seqLen))
	}); panicErr != nil {
		return nil, fmt.Errorf("running the model on %d rows of %d tokens: %w", len(rows), seqLen, panicErr)
	}
	if callErr != nil {
		return nil, fmt.Errorf("running the model on %d rows of %d tokens: %w", len(rows), seqLen, callErr)
	}
	defer func() {
		for _, output := range outputs {
			_ = output.FinalizeAll()
		}
	}()
	return e.decode(rows, outputs)
}

// decode turns the graph outputs of one batch into traces. A score is kept
// only where the candidate mask is set, so positions that were not candidates
// at a step have a NaN score there.
func (e *traceExtractor) decode(rows [][]int32, outputs []*tensors.Tensor) ([]Trace, error) {
	batch, seqLen := len(rows), len(rows[0])
	numSteps := (len(outputs) - 2) / outputsPerStep
	numRecursions := e.cfg.NumRecursions
	if numSteps > numRecursions {
		return nil, fmt.Errorf("the model ran %d recursion steps but N_r is %d", numSteps, numRecursions)
	}
	losses := tensors.MustCopyFlatData[float32](outputs[0]) // [B, L−1]
	depths := tensors.MustCopyFlatData[int32](outputs[1])   // [B, L]

	traces := make([]Trace, batch)
	for b := range batch {
		traces[b] = Trace{Routing: e.options.Routing, Router: string(e.cfg.Router.Kind), NumRecursions: numRecursions,
			ScoreThreshold: e.cfg.Router.ScoreThreshold(), Tokens: make([]TokenTrace, seqLen)}
		for p := range seqLen {
			token := TokenTrace{ID: int(rows[b][p]), Depth: int(depths[b*seqLen+p]), Loss: math.NaN(),
				Scores: make([]float64, numRecursions), Selected: make([]bool, numRecursions)}
			for step := range token.Scores {
				token.Scores[step] = math.NaN()
			}
			if p < seqLen-1 {
				token.Loss = float64(losses[b*(seqLen-1)+p])
			}
			traces[b].Tokens[p] = token
		}
	}

	for step := range numSteps {
		first := 2 + outputsPerStep*step
		positions := tensors.MustCopyFlatData[int32](outputs[first])         // [B, K]
		scores := tensors.MustCopyFlatData[float32](outputs[first+1])        // [B, K]
		candidateMask := tensors.MustCopyFlatData[float32](outputs[first+2]) // [B, L]
		active := tensors.MustCopyFlatData[float32](outputs[first+3])        // [B, L]
		numScored := len(positions) / batch
		for b := range batch {
			for k := range numScored {
				position := int(positions[b*numScored+k])
				if position >= 0 && position < seqLen && candidateMask[b*seqLen+position] > 0 {
					traces[b].Tokens[position].Scores[step] = float64(scores[b*numScored+k])
				}
			}
			for p := range seqLen {
				traces[b].Tokens[p].Selected[step] = active[b*seqLen+p] > 0
			}
		}
	}

	for b := range traces {
		if err := traces[b].Validate(); err != nil {
			return nil, fmt.Errorf("the model's routing records are inconsistent: %w", err)
		}
	}
	return traces, nil
}
