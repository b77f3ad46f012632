# 紙の控えと印刷（paper_view.rs）
paper-title = 印刷（A4）
paper-present = 在所者一覧
paper-evacuees = 避難者名簿
paper-status = 状況報告（第n報）
paper-extract = 名簿抄本
paper-hourly = 時間別受付者数
paper-printed = { $file } を保存し、プリンタ { $queue } に送りました
paper-saved = { $file } を保存しました（印刷はしていません：{ $why }）
paper-here-present = 在所者一覧を印刷
paper-here-evacuees = 避難者名簿を印刷
paper-here-status = 状況報告を印刷
paper-here-extract = 名簿抄本を印刷
paper-here-hourly = 時間別受付者数を印刷
receipt-print = 受付票を印刷（{ $time } の受付）
