# Paper copies and printing (paper_view.rs)
paper-title = Print (A4)
paper-present = Present list
paper-evacuees = Evacuee list
paper-status = Status report (no. n)
paper-extract = Roster extract
paper-hourly = Check-ins per hour
paper-printed = Saved { $file } and sent it to printer { $queue }
paper-saved = Saved { $file } (not printed: { $why })
paper-here-present = Print the present list
paper-here-evacuees = Print the evacuee list
paper-here-status = Print the status report
paper-here-extract = Print the roster extract
paper-here-hourly = Print the check-ins per hour
receipt-print = Print the receipt slip (check-in at { $time })
