package mor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// A safetensors file starts with an 8-byte little-endian header length N.
// The JSON header of N bytes that follows maps each tensor name to its
// dtype, shape and [begin, end) byte offsets into the data section, and may
// hold a "__metadata__" object of strings. The raw little-endian data follow.

// maxSafetensorsHeader bounds the JSON header a reader accepts (100 MB, the
// limit of the Hugging Face reference reader), so a corrupt length fails fast.
const maxSafetensorsHeader = 100 << 20

// NamedTensor is one tensor of a safetensors file.
type NamedTensor struct {
	Name  string
	DType string // "F32", "BF16", "F16" or "F64"
	Shape []int
	Data  []byte // little-endian values in row-major order
}

// safetensorsEntry is one tensor's record in the JSON header.
type safetensorsEntry struct {
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
}

// elementSize returns the bytes per element of a safetensors dtype.
func elementSize(dtype string) (int, error) {
	switch dtype {
	case "F32":
		return 4, nil
	case "BF16", "F16":
		return 2, nil
	case "F64":
		return 8, nil
	default:
		return 0, fmt.Errorf("unsupported safetensors dtype %q: use F32, BF16, F16 or F64", dtype)
	}
}

// checkTensorSize returns an error when data does not hold shape's elements of dtype.
func checkTensorSize(name, dtype string, shape []int, dataLen int) error {
	size, err := elementSize(dtype)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	elements := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("tensor %s: negative dimension in shape %v", name, shape)
		}
		elements *= d
	}
	if elements*size != dataLen {
		return fmt.Errorf("tensor %s: shape %v of %s needs %d bytes, got %d", name, shape, dtype, elements*size, dataLen)
	}
	return nil
}

// WriteSafetensors writes tensors and metadata to path in the safetensors
// format, atomically: it writes a temporary file in the same directory and
// renames it over path. Tensor data are laid out in name order.
func WriteSafetensors(path string, namedTensors []NamedTensor, metadata map[string]string) error {
	ordered := slices.Clone(namedTensors)
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].Name < ordered[j].Name })

	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	offset := 0
	for i, tensor := range ordered {
		if i > 0 && tensor.Name == ordered[i-1].Name {
			return fmt.Errorf("tensor name %q appears twice", tensor.Name)
		}
		if tensor.Name == "__metadata__" {
			return fmt.Errorf("tensor name %q is reserved for the metadata", tensor.Name)
		}
		if err := checkTensorSize(tensor.Name, tensor.DType, tensor.Shape, len(tensor.Data)); err != nil {
			return err
		}
		shape := tensor.Shape
		if shape == nil {
			shape = []int{} // a scalar is written as "shape": []
		}
		header[tensor.Name] = safetensorsEntry{DType: tensor.DType, Shape: shape, DataOffsets: [2]int{offset, offset + len(tensor.Data)}}
		offset += len(tensor.Data)
	}

	encoded, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encoding the safetensors header failed: %w", err)
	}
	// Pad the header with spaces so the data start on an 8-byte boundary.
	for len(encoded)%8 != 0 {
		encoded = append(encoded, ' ')
	}

	return writeFileAtomically(path, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(encoded))); err != nil {
			return err
		}
		if _, err := w.Write(encoded); err != nil {
			return err
		}
		for _, tensor := range ordered {
			if _, err := w.Write(tensor.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFileAtomically writes path through a temporary file in its directory,
// synced and then renamed, so readers never see a partial file.
func writeFileAtomically(path string, write func(io.Writer) error) (err error) {
	temporary, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file for %s failed: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = temporary.Close()
			_ = os.Remove(temporary.Name())
		}
	}()

	if err = write(temporary); err != nil {
		return fmt.Errorf("writing %s failed: %w", temporary.Name(), err)
	}
	if err = temporary.Sync(); err != nil {
		return fmt.Errorf("syncing %s failed: %w", temporary.Name(), err)
	}
	if err = temporary.Close(); err != nil {
		return fmt.Errorf("closing %s failed: %w", temporary.Name(), err)
	}
	if err = os.Rename(temporary.Name(), path); err != nil {
		return fmt.Errorf("renaming %s to %s failed: %w", temporary.Name(), path, err)
	}
	return nil
}

// ReadSafetensors reads every tensor and the metadata of a safetensors file.
// It checks that each tensor's offsets lie inside the data, match its dtype
// and shape, and do not overlap another tensor.
func ReadSafetensors(path string) ([]NamedTensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading safetensors file failed: %w", err)
	}
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%s is not a safetensors file: %d bytes, shorter than the 8-byte header length", path, len(data))
	}
	headerLen := binary.LittleEndian.Uint64(data[:8])
	if headerLen > maxSafetensorsHeader || headerLen > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("%s is not a valid safetensors file: header length %d exceeds the file (%d bytes) or the 100 MB limit",
			path, headerLen, len(data))
	}
	payload := data[8+headerLen:]

	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+headerLen], &header); err != nil {
		return nil, nil, fmt.Errorf("%s: invalid safetensors JSON header: %w", path, err)
	}

	var metadata map[string]string
	if raw, found := header["__metadata__"]; found {
		if err := json.Unmarshal(raw, &metadata); err != nil {
			return nil, nil, fmt.Errorf("%s: __metadata__ must map strings to strings: %w", path, err)
		}
		delete(header, "__metadata__")
	}

	namedTensors := make([]NamedTensor, 0, len(header))
	spans := make([]dataSpan, 0, len(header))
	for name, raw := range header {
		var entry safetensorsEntry
		if err := json.Unmarshal(raw, &entry); err != nil {
			return nil, nil, fmt.Errorf("%s: invalid header entry for tensor %s: %w", path, name, err)
		}
		begin, end := entry.DataOffsets[0], entry.DataOffsets[1]
		if begin < 0 || end < begin || end > len(payload) {
			return nil, nil, fmt.Errorf("%s: tensor %s has data offsets [%d, %d) outside the %d data bytes", path, name, begin, end, len(payload))
		}
		if err := checkTensorSize(name, entry.DType, entry.Shape, end-begin); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		namedTensors = append(namedTensors, NamedTensor{Name: name, DType: entry.DType, Shape: entry.Shape, Data: payload[begin:end]})
		spans = append(spans, dataSpan{begin: begin, end: end, name: name})
	}

	if err := checkNoOverlap(spans); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	sort.Slice(namedTensors, func(i, j int) bool { return namedTensors[i].Name < namedTensors[j].Name })
	return namedTensors, metadata, nil
}

// dataSpan is the [begin, end) byte range of one tensor in the data section.
type dataSpan struct {
	begin, end int
	name       string
}

// checkNoOverlap returns an error when two non-empty spans share bytes.
func checkNoOverlap(spans []dataSpan) error {
	spans = slices.DeleteFunc(slices.Clone(spans), func(s dataSpan) bool { return s.begin == s.end })
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return fmt.Errorf("tensors %s and %s overlap in the data", spans[i-1].name, spans[i].name)
		}
	}
	return nil
}

// encodeFloats converts values to the little-endian bytes of a safetensors dtype.
func encodeFloats(values []float64, dtype string) ([]byte, error) {
	var buffer bytes.Buffer
	for _, v := range values {
		var err error
		switch dtype {
		case "F32":
			err = binary.Write(&buffer, binary.LittleEndian, float32(v))
		case "F64":
			err = binary.Write(&buffer, binary.LittleEndian, v)
		case "BF16":
			err = binary.Write(&buffer, binary.LittleEndian, bfloat16.FromFloat64(v).Bits())
		case "F16":
			err = binary.Write(&buffer, binary.LittleEndian, uint16(float16.FromFloat64(v)))
		default:
			_, err = elementSize(dtype)
		}
		if err != nil {
			return nil, err
		}
	}
	return buffer.Bytes(), nil
}

// decodeFloats converts the little-endian bytes of a safetensors dtype to float64 values.
func decodeFloats(data []byte, dtype string) ([]float64, error) {
	size, err := elementSize(dtype)
	if err != nil {
		return nil, err
	}
	values := make([]float64, len(data)/size)
	for i := range values {
		chunk := data[i*size : (i+1)*size]
		switch dtype {
		case "F32":
			values[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(chunk)))
		case "F64":
			values[i] = math.Float64frombits(binary.LittleEndian.Uint64(chunk))
		case "BF16":
			values[i] = bfloat16.FromBits(binary.LittleEndian.Uint16(chunk)).Float64()
		case "F16":
			values[i] = float16.FromBits(binary.LittleEndian.Uint16(chunk)).Float64()
		}
	}
	return values, nil
}

// hfTensor links one Hugging Face Llama tensor name to a model variable.
type hfTensor struct {
	name      string // e.g. "model.layers.3.mlp.up_proj.weight"
	path      string // e.g. "/layer_01/mlp/up_proj/weights"
	transpose bool   // Linear weights: HF stores [out, in], the model [in, out]
}

// hfTensors lists the Hugging Face Llama tensors of cfg. Each unrolled layer
// gets its own model.layers.ℓ entries, so tied layers appear once per use.
func hfTensors(cfg Config) []hfTensor {
	list := []hfTensor{
		{name: "model.embed_tokens.weight", path: "/" + scopeEmbedding + "/" + varEmbeddingMatrix},
		{name: "model.norm.weight", path: "/" + scopeFinalNorm + "/" + varNormScale},
	}
	if !cfg.TiedEmbeddings {
		list = append(list, hfTensor{name: "lm_head.weight", path: "/" + scopeLMHead + "/" + varLinearWeights, transpose: true})
	}
	for _, entry := range SharingMap(cfg) {
		prefix := fmt.Sprintf("model.layers.%d.", entry.Unrolled)
		for _, projection := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			list = append(list, hfTensor{
				name:      prefix + scopeAttention + "." + projection + ".weight",
				path:      entry.Weights + "/" + scopeAttention + "/" + projection + "/" + varLinearWeights,
				transpose: true,
			})
		}
		for _, projection := range []string{"gate_proj", "up_proj", "down_proj"} {
			list = append(list, hfTensor{
				name:      prefix + scopeMLP + "." + projection + ".weight",
				path:      entry.Weights + "/" + scopeMLP + "/" + projection + "/" + varLinearWeights,
				transpose: true,
			})
		}
		for _, norm := range []string{scopeInputNorm, scopePostAttnNorm} {
			list = append(list, hfTensor{name: prefix + norm + ".weight", path: entry.Norms + "/" + norm + "/" + varNormScale})
		}
	}
	return list
}

// transpose2D swaps the two axes of a row-major [rows, columns] matrix.
func transpose2D(values []float64, rows, columns int) []float64 {
	out := make([]float64, len(values))
	for r := range rows {
		for c := range columns {
			out[c*rows+r] = values[r*columns+c]
		}
	}
	return out
}

// variableFloats returns a variable's values as float64 with its dimensions.
func variableFloats(variable *model.Variable) ([]float64, []int, error) {
	value, err := variable.Value()
	if err != nil {
		return nil, nil, fmt.Errorf("variable %s has no value: %w", variable.Path(), err)
	}
	dims := slices.Clone(value.Shape().Dimensions)
	switch value.DType() {
	case dtypes.Float32:
		return widen(tensors.MustCopyFlatData[float32](value), func(v float32) float64 { return float64(v) }), dims, nil
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](value), dims, nil
	case dtypes.BFloat16:
		return widen(tensors.MustCopyFlatData[bfloat16.BFloat16](value), bfloat16.BFloat16.Float64), dims, nil
	case dtypes.Float16:
		return widen(tensors.MustCopyFlatData[float16.Float16](value), float16.Float16.Float64), dims, nil
	default:
		return nil, nil, fmt.Errorf("variable %s has dtype %s; only float variables can be exported", variable.Path(), value.DType())
	}
}

// widen converts a slice element by element to float64.
func widen[T any](values []T, convert func(T) float64) []float64 {
	out := make([]float64, len(values))
	for i, v := range values {
		out[i] = convert(v)
	}
	return out
}

// tensorFromFloats builds a tensor of dtype from float64 values.
func tensorFromFloats(values []float64, dtype dtypes.DType, dims []int) *tensors.Tensor {
	switch dtype {
	case dtypes.Float64:
		return tensors.FromFlatDataAndDimensions(values, dims...)
	case dtypes.BFloat16:
		return tensors.FromFlatDataAndDimensions(bfloat16.FromNumbers(values...), dims...)
	case dtypes.Float16:
		return tensors.FromFlatDataAndDimensions(float16.FromNumbers(values...), dims...)
	default:
		narrow := make([]float32, len(values))
		for i, v := range values {
			narrow[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(narrow, dims...)
	}
}

// ExportSafetensors writes the model of cfg held in store to path with
// Hugging Face Llama tensor names and layouts ([out, in] for Linear weights),
// in dtype "F32", "BF16" or "F16". Models with tied layers are exported
// unrolled: every unrolled layer ℓ gets model.layers.ℓ.* tensors, copies of
// its unique layer, so the file loads as a vanilla Llama of depth N_L. With
// tied embeddings lm_head.weight is omitted, as Hugging Face does with
// tie_word_embeddings. The gomor config is stored in the metadata under
// "gomor_config".
func ExportSafetensors(path string, store *model.Store, cfg Config, dtype string) error {
	if _, err := elementSize(dtype); err != nil {
		return err
	}
	encodedConfig, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the model config failed: %w", err)
	}

	var namedTensors []NamedTensor
	for _, tensor := range hfTensors(cfg) {
		variable := store.GetVariable(tensor.path)
		if variable == nil {
			return fmt.Errorf("variable %s for %s not found: build or load the model in this store before exporting", tensor.path, tensor.name)
		}
		values, dims, err := variableFloats(variable)
		if err != nil {
			return err
		}
		if tensor.transpose {
			values = transpose2D(values, dims[0], dims[1])
			dims = []int{dims[1], dims[0]}
		}
		data, err := encodeFloats(values, dtype)
		if err != nil {
			return err
		}
		namedTensors = append(namedTensors, NamedTensor{Name: tensor.name, DType: dtype, Shape: dims, Data: data})
	}

	metadata := map[string]string{"format": "pt", "gomor_config": string(encodedConfig)}
	return WriteSafetensors(path, namedTensors, metadata)
}

// ImportSafetensors reads a Hugging Face Llama safetensors file into store as
// the variables of a model of cfg, converting to cfg's dtype. Every tensor the
// config needs must be present with the expected shape. For configs with tied
// layers, every unrolled copy of a tied tensor must hold the same values, as
// ExportSafetensors writes them. A file from an untied model, whose copies
// differ, is rejected rather than averaged. lm_head.weight is ignored for
// tied embeddings, as are rotary_emb.inv_freq buffers; any other unexpected
// tensor is an error.
func ImportSafetensors(path string, store *model.Store, cfg Config) error {
	namedTensors, _, err := ReadSafetensors(path)
	if err != nil {
		return err
	}
	byName := make(map[string]NamedTensor, len(namedTensors))
	for _, tensor := range namedTensors {
		byName[tensor.Name] = tensor
	}

	values, dims, err := collectVariableValues(path, cfg, byName)
	if err != nil {
		return err
	}
	if err := checkUnexpectedTensors(path, cfg, byName); err != nil {
		return err
	}

	dtype := activationDType(cfg)
	for variablePath, flat := range values {
		if err := setVariable(store, variablePath, tensorFromFloats(flat, dtype, dims[variablePath])); err != nil {
			return err
		}
	}
	return nil
}

// collectVariableValues gathers, for each variable of cfg, its values in the
// model layout from the file's tensors, checking shapes and tied copies.
func collectVariableValues(path string, cfg Config, byName map[string]NamedTensor) (map[string][]float64, map[string][]int, error) {
	values := map[string][]float64{}
	dims := map[string][]int{}
	source := map[string]string{}
	for _, tensor := range hfTensors(cfg) {
		named, found := byName[tensor.name]
		if !found {
			return nil, nil, fmt.Errorf("%s: tensor %s is missing; the file does not hold a model of this config (%d layers, tied embeddings %v)",
				path, tensor.name, cfg.NumLayers, cfg.TiedEmbeddings)
		}
		want := expectedHFShape(cfg, tensor)
		if !slices.Equal(named.Shape, want) {
			return nil, nil, fmt.Errorf("%s: tensor %s has shape %v, the config needs %v", path, tensor.name, named.Shape, want)
		}
		flat, err := decodeFloats(named.Data, named.DType)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %s: %w", path, tensor.name, err)
		}
		shape := slices.Clone(named.Shape)
		if tensor.transpose {
			flat = transpose2D(flat, shape[0], shape[1])
			shape = []int{shape[1], shape[0]}
		}

		if previous, tied := values[tensor.path]; tied {
			if !slices.Equal(previous, flat) {
				return nil, nil, fmt.Errorf("%s: %s and %s differ, but this config ties both to %s; import the file into an untied config instead",
					path, source[tensor.path], tensor.name, tensor.path)
			}
			continue
		}
		values[tensor.path], dims[tensor.path], source[tensor.path] = flat, shape, tensor.name
	}
	return values, dims, nil
}

// expectedHFShape returns the Hugging Face shape of tensor for cfg.
func expectedHFShape(cfg Config, tensor hfTensor) []int {
	d, attention, kv := cfg.DModel, cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	scope, _ := model.SplitPath(tensor.path)
	switch model.BasePath(scope) {
	case scopeEmbedding:
		return []int{cfg.VocabSize, d}
	case scopeLMHead:
		return []int{cfg.VocabSize, d}
	case "q_proj":
		return []int{attention, d}
	case "k_proj", "v_proj":
		return []int{kv, d}
	case "o_proj":
		return []int{d, attention}
	case "gate_proj", "up_proj":
		return []int{cfg.FFNSize, d}
	case "down_proj":
		return []int{d, cfg.FFNSize}
	default: // norms
		return []int{d}
	}
}

// checkUnexpectedTensors returns an error naming a tensor of the file that cfg does not use.
func checkUnexpectedTensors(path string, cfg Config, byName map[string]NamedTensor) error {
	expected := map[string]bool{}
	for _, tensor := range hfTensors(cfg) {
		expected[tensor.name] = true
	}
	var unexpected []string
	for name := range byName {
		switch {
		case expected[name]:
		case cfg.TiedEmbeddings && name == "lm_head.weight":
		case filepath.Ext(name) == ".inv_freq":
		default:
			unexpected = append(unexpected, name)
		}
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		return fmt.Errorf("%s: %d tensors are not part of a model of this config (%d layers), first %s",
			path, len(unexpected), cfg.NumLayers, unexpected[0])
	}
	return nil
}

// setVariable sets the variable at path to value, creating it when store does not have it yet.
func setVariable(store *model.Store, path string, value *tensors.Tensor) error {
	if variable := store.GetVariable(path); variable != nil {
		if !variable.Shape().Equal(value.Shape()) {
			return fmt.Errorf("variable %s has shape %s, the imported value %s", path, variable.Shape(), value.Shape())
		}
		return variable.SetValue(value)
	}
	_, err := store.CreateVariable(path, value)
	return err
}
