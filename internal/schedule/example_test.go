package schedule_test

import (
	"fmt"
	"time"

	"github.com/hostd/hostd/internal/schedule"
)

func ExampleParse() {
	s, err := schedule.Parse("Mon..Fri 02:30")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	// Output: Mon..Fri *-*-* 02:30:00
}

func ExampleParse_error() {
	_, err := schedule.Parse("Mon..Fri 25:00")
	fmt.Println(err)
	// Output: invalid calendar expression "Mon..Fri 25:00": hour 25 out of range 0..23
}

func ExampleSchedule_Next() {
	s := schedule.MustParse("*-*~01 00/6:00; Sat 10:00 UTC")
	t := time.Date(2024, time.February, 28, 20, 0, 0, 0, time.UTC)
	for range 4 {
		t = s.Next(t)
		fmt.Println(t.Format("Mon 2006-01-02 15:04"))
	}
	// Output:
	// Thu 2024-02-29 00:00
	// Thu 2024-02-29 06:00
	// Thu 2024-02-29 12:00
	// Thu 2024-02-29 18:00
}

func ExampleTimer_Next() {
	timer := schedule.Timer{
		Schedule:   schedule.MustParse("daily UTC"),
		Persistent: true,
	}
	lastRun := time.Date(2024, time.May, 1, 0, 0, 3, 0, time.UTC)
	// hostd was down on May 2nd: at start on May 3rd the missed run is due.
	now := time.Date(2024, time.May, 3, 9, 0, 0, 0, time.UTC)
	next := timer.Next(lastRun, now)
	fmt.Println(next.Format(time.DateTime), !next.After(now))
	// Once it has run, the next run is the next elapse.
	fmt.Println(timer.Next(now, now).Format(time.DateTime))
	// Output:
	// 2024-05-03 09:00:00 true
	// 2024-05-04 00:00:00
}
