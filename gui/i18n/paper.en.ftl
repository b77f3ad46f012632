# Paper copies and printing (paper_view.rs)
paper-title = Print (A4)
paper-present = Present list
paper-evacuees = Evacuee list
paper-status = Status report (no. n)
paper-extract = Roster extract
paper-hourly = Check-ins per hour
paper-printed = Saved { $file } and sent it to printer { $queue }
paper-saved = Saved { $file } (not printed: { $why })
