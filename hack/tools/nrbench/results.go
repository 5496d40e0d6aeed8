package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// results are the NRBENCH key=value lines of one N's run (results-<N>.txt):
// a key seen twice keeps its last value.
type results map[string]string

func readResults(path string) (results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := results{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "NRBENCH ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			r[k] = v
		}
	}
	return r, sc.Err()
}

// str is the raw value, "" when absent.
func (r results) str(key string) string { return r[key] }

// num is the value as a number, NaN when absent or not a number.
func (r results) num(key string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(r[key]), 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// reps is the value of the key over the runs: format has one %d.
func (r results) reps(format string, n int) []float64 {
	out := make([]float64, 0, n)
	for rep := 1; rep <= n; rep++ {
		out = append(out, r.num(fmt.Sprintf(format, rep)))
	}
	return out
}

// known drops NaNs.
func known(vs []float64) []float64 {
	out := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

// median is the middle value (the lower one of the two for an even count),
// NaN for none.
func median(vs []float64) float64 {
	vs = known(vs)
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	return s[(len(s)-1)/2]
}

func minMax(vs []float64) (lo, hi float64) {
	vs = known(vs)
	if len(vs) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi = vs[0], vs[0]
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

func sum(vs []float64) float64 {
	s := 0.0
	for _, v := range known(vs) {
		s += v
	}
	return s
}

// sub is a-b elementwise.
func sub(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// ratio is a/b elementwise (NaN where b is 0).
func ratio(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = math.NaN()
		if b[i] != 0 {
			out[i] = a[i] / b[i]
		}
	}
	return out
}

// fmtNum prints v with the given decimals, "n/a" for NaN.
func fmtNum(v float64, decimals int) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
