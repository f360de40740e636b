package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of a chart.
type series struct {
	name   string
	xs, ys []float64
	dashed bool
}

// chart is a line chart with numeric axes, drawn to a PNG by draw.
type chart struct {
	title, xlabel, ylabel string
	logX, logY            bool
	series                []series
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

const (
	chartW, chartH = 720, 440
	marginL        = 80
	marginR        = 20
	marginT        = 40
	marginB        = 60
)

// write draws the chart into a PNG file.
func (c *chart) write(path string) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	var xs, ys []float64
	for _, s := range c.series {
		for i := range s.xs {
			if ok(s.xs[i], c.logX) && ok(s.ys[i], c.logY) {
				xs, ys = append(xs, s.xs[i]), append(ys, s.ys[i])
			}
		}
	}
	if len(xs) == 0 {
		return fmt.Errorf("chart %q: no data", c.title)
	}
	x0, x1 := slices.Min(xs), slices.Max(xs)
	y0, y1 := slices.Min(ys), slices.Max(ys)
	if !c.logY {
		y0 = min(0, y0)
	}
	xt, x0, x1 := ticks(x0, x1, c.logX)
	yt, y0, y1 := ticks(y0, y1, c.logY)
	pw, ph := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	px := func(x float64) int {
		return marginL + int(math.Round(pw*frac(x, x0, x1, c.logX)))
	}
	py := func(y float64) int {
		return chartH - marginB - int(math.Round(ph*frac(y, y0, y1, c.logY)))
	}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	black := color.RGBA{0, 0, 0, 0xff}
	for _, t := range yt {
		line(img, marginL, py(t), chartW-marginR, py(t), grey, false)
		label := num(t)
		text(img, marginL-8-7*len(label), py(t)+4, label, black)
	}
	for _, t := range xt {
		line(img, px(t), marginT, px(t), chartH-marginB, grey, false)
		label := num(t)
		text(img, px(t)-7*len(label)/2, chartH-marginB+16, label, black)
	}
	line(img, marginL, chartH-marginB, chartW-marginR, chartH-marginB, black, false)
	line(img, marginL, marginT, marginL, chartH-marginB, black, false)
	text(img, (chartW-7*len(c.title))/2, 20, c.title, black)
	text(img, marginL+int(pw)/2-7*len(c.xlabel)/2, chartH-18, c.xlabel, black)
	text(img, 8, marginT-10, c.ylabel, black)
	for k, s := range c.series {
		col := palette[k%len(palette)]
		prev := image.Point{-1, -1}
		for i := range s.xs {
			if !ok(s.xs[i], c.logX) || !ok(s.ys[i], c.logY) {
				prev = image.Point{-1, -1}
				continue
			}
			p := image.Point{px(s.xs[i]), py(s.ys[i])}
			if prev.X >= 0 {
				line(img, prev.X, prev.Y, p.X, p.Y, col, s.dashed)
			}
			dot(img, p, col)
			prev = p
		}
		// Legend, top left inside the plot.
		lx, ly := marginL+12, marginT+14+16*k
		line(img, lx, ly-4, lx+24, ly-4, col, s.dashed)
		text(img, lx+30, ly, s.name, black)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ok(v float64, log bool) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (!log || v > 0)
}

func frac(v, lo, hi float64, log bool) float64 {
	if log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return 0.5
	}
	return (v - lo) / (hi - lo)
}

// ticks returns tick values covering [lo, hi] and the range they span:
// powers of ten (with 2 and 5 between) on a log axis, 1-2-5 steps on a
// linear one.
func ticks(lo, hi float64, log bool) ([]float64, float64, float64) {
	if log {
		// 1-2-5 steps, from the last one at or below lo to the first at
		// or above hi.
		var all []float64
		for e := math.Floor(math.Log10(lo)) - 1; e <= math.Ceil(math.Log10(hi)); e++ {
			for _, m := range []float64{1, 2, 5} {
				all = append(all, m*math.Pow(10, e))
			}
		}
		a, b := 0, len(all)-1
		for i, v := range all {
			if v <= lo*1.0001 {
				a = i
			}
		}
		for i := len(all) - 1; i >= 0; i-- {
			if all[i] >= hi/1.0001 {
				b = i
			}
		}
		return all[a : b+1], all[a], all[b]
	}
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	a, b := math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	var out []float64
	for v := a; v <= b+step/2; v += step {
		out = append(out, v)
	}
	return out, a, b
}

func num(v float64) string {
	switch av := math.Abs(v); {
	case av >= 1e9:
		return trim(v/1e9) + "G"
	case av >= 1e6:
		return trim(v/1e6) + "M"
	case av >= 1e4:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	return s
}

func text(img draw.Image, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func dot(img *image.RGBA, p image.Point, c color.Color) {
	for dx := -2; dx <= 2; dx++ {
		for dy := -2; dy <= 2; dy++ {
			img.Set(p.X+dx, p.Y+dy, c)
		}
	}
}

// line draws from (x0,y0) to (x1,y1), two pixels wide (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, dashed bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for n := 0; ; n++ {
		if !dashed || (n/6)%2 == 0 {
			img.Set(x0, y0, c)
			img.Set(x0, y0+1, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
