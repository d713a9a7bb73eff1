package cli

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/markusmobius/go-dateutil/v2/parser"
)

// isoYear and isoYearMonth are the ISO 8601 forms pendulum parses itself
// before falling back to dateutil (which would fill in today's month and
// day instead of the first).
var (
	isoYear      = regexp.MustCompile(`^(\d{4})$`)
	isoYearMonth = regexp.MustCompile(`^(\d{4})-(\d{2})$`)
)

// parseExpire is pendulum.parse(text, strict=False) as `create-key
// --expire` uses it: dateutil's parser with today (UTC) as the default, a
// naive result taken as UTC, an aware one kept in its offset. The error
// text is pendulum's.
func parseExpire(text string, now time.Time) (time.Time, error) {
	now = now.UTC()
	if m := isoYear.FindStringSubmatch(text); m != nil {
		y, _ := strconv.Atoi(m[1])
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), nil
	}
	if m := isoYearMonth.FindStringSubmatch(text); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo >= 1 && mo <= 12 {
			return time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC), nil
		}
	}
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	res, err := parser.Parse(text, midnight, now.Year())
	if err != nil {
		return time.Time{}, failf("Invalid date string: %s", text)
	}
	t := res.Time
	if !res.Aware {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), nil
	}
	loc := time.UTC
	if res.Offset != 0 {
		loc = time.FixedZone("", int(res.Offset/time.Second))
	}
	return res.Instant().In(loc), nil
}

// isoformat is Python's datetime.isoformat() for an aware datetime.
func isoformat(t time.Time) string {
	s := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	s += fmt.Sprintf("%c%02d:%02d", sign, off/3600, off/60%60)
	if off%60 != 0 {
		s += fmt.Sprintf(":%02d", off%60)
	}
	return s
}

// preciseDiff is pendulum's precise_diff between a <= b, in UTC: whole
// years, months, days, hours, minutes and seconds.
type preciseDiff struct {
	years, months, days, hours, minutes, seconds int
}

var daysPerMonth = [2][13]int{
	{-1, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	{-1, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
}

func isLeap(y int) int {
	if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		return 1
	}
	return 0
}

func diff(a, b time.Time) preciseDiff {
	a, b = a.UTC(), b.UTC()
	if a.After(b) {
		a, b = b, a
	}
	hourDiff := b.Hour() - a.Hour()
	minDiff := b.Minute() - a.Minute()
	secDiff := b.Second() - a.Second()
	micDiff := b.Nanosecond()/1000 - a.Nanosecond()/1000
	yDiff := b.Year() - a.Year()
	mDiff := int(b.Month()) - int(a.Month())
	dDiff := b.Day() - a.Day()
	if micDiff < 0 {
		secDiff--
	}
	if secDiff < 0 {
		secDiff += 60
		minDiff--
	}
	if minDiff < 0 {
		minDiff += 60
		hourDiff--
	}
	if hourDiff < 0 {
		hourDiff += 24
		dDiff--
	}
	if dDiff < 0 {
		year, month := b.Year(), int(b.Month())
		if month == 1 {
			month, year = 12, year-1
		} else {
			month--
		}
		daysInLastMonth := daysPerMonth[isLeap(year)][month]
		daysInMonth := daysPerMonth[isLeap(b.Year())][int(b.Month())]
		switch {
		case dDiff < daysInMonth-daysInLastMonth:
			if daysInLastMonth < a.Day() {
				dDiff += a.Day()
			} else {
				dDiff += daysInLastMonth
			}
		case dDiff == daysInMonth-daysInLastMonth:
			dDiff = 0
			mDiff++
		default:
			dDiff += daysInLastMonth
		}
		mDiff--
	}
	if mDiff < 0 {
		mDiff += 12
		yDiff--
	}
	return preciseDiff{yDiff, mDiff, dDiff, hourDiff, minDiff, secDiff}
}

// diffForHumans is pendulum's DateTime.diff_for_humans() in English for a
// time relative to now: "in 3 years", "2 days ago", "in a few seconds".
func diffForHumans(t, now time.Time) string {
	d := diff(t, now)
	future := t.After(now)
	weeks, remDays := d.days/7, d.days%7
	var unit string
	var count int
	switch {
	case d.years > 0:
		unit, count = "year", d.years
		if d.months > 6 {
			count++
		}
	case d.months == 11 && weeks*7+remDays > 15:
		unit, count = "year", 1
	case d.months > 0:
		unit, count = "month", d.months
		if weeks*7+remDays >= 27 {
			count++
		}
	case weeks > 0:
		unit, count = "week", weeks
		if remDays > 3 {
			count++
		}
	case remDays > 0:
		unit, count = "day", remDays
		if d.hours >= 22 {
			count++
		}
	case d.hours > 0:
		unit, count = "hour", d.hours
	case d.minutes > 0:
		unit, count = "minute", d.minutes
	case d.seconds > 10 && d.seconds <= 59:
		unit, count = "second", d.seconds
	default:
		if future {
			return "in a few seconds"
		}
		return "a few seconds ago"
	}
	if count == 0 {
		count = 1
	}
	text := fmt.Sprintf("%d %s", count, unit)
	if count != 1 {
		text += "s"
	}
	if future {
		return "in " + text
	}
	return text + " ago"
}
