# 紙の控えと印刷（paper_view.rs）
paper-title = 印刷（A4）
paper-present = 在所者一覧
paper-evacuees = 避難者名簿
paper-status = 状況報告（第n報）
paper-extract = 名簿抄本
paper-hourly = 時間別受付者数
paper-printed = { $file } を保存し、プリンタ { $queue } に送りました
paper-saved = { $file } を保存しました（印刷はしていません：{ $why }）
