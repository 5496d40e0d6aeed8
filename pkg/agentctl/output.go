package agentctl

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// Output formats.
const (
	outputText = "text"
	outputJSON = "json"
	outputYAML = "yaml"
)

func registerOutput(fs *flag.FlagSet, out *string) {
	*out = outputText
	fs.StringVar(out, "o", outputText, "output format: text, json or yaml")
	fs.StringVar(out, "output", outputText, "same as -o")
}

func validOutput(o string) error {
	switch o {
	case outputText, outputJSON, outputYAML:
		return nil
	}
	return fmt.Errorf("unknown output format %q: use text, json or yaml", o)
}

// writeStructured writes v as indented JSON or as YAML (same field names).
// HTML escaping is off, so that actions read "->" and not "\u003e".
func writeStructured(w io.Writer, format string, v interface{}) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	b := buf.Bytes()
	if format == outputYAML {
		var err error
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
	}
	_, err := w.Write(b)
	return err
}
