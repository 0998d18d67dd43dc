"""Writes the columnar and compressed data fixtures with an independent writer (pyarrow), so
that tandem's readers are tested on files it did not write. Run from the repository root:
    pip install pyarrow && python3 tests/reference/scripts/columnar_fixtures.py
- tests/fixtures/formats/facial.parquet: models/data/synthetic/facial.csv as Parquet (snappy),
  `second` as int64 and `patient` dictionary-encoded (as R's arrow writes a factor).
- tests/fixtures/formats/sleepstudy.feather: lme4's sleepstudy as Arrow IPC (Feather v2,
  uncompressed), Subject as a dictionary.
- tests/fixtures/formats/sleepstudy.csv.gz: models/data/lme4/sleepstudy.csv, gzip-compressed.
- tests/fixtures/formats/dates.parquet: three rows with a date column (refused by type).
"""
import gzip
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

facial = pacsv.read_csv(
    "models/data/synthetic/facial.csv",
    convert_options=pacsv.ConvertOptions(
        column_types={"second": pa.int64(), "patient": pa.string(), "session": pa.string()}
    ),
)
facial = facial.set_column(0, "patient", pc.dictionary_encode(facial.column("patient")))
pq.write_table(facial, "tests/fixtures/formats/facial.parquet", compression="snappy")

sleep = pacsv.read_csv(
    "models/data/lme4/sleepstudy.csv",
    convert_options=pacsv.ConvertOptions(column_types={"Subject": pa.string()}),
)
sleep = sleep.set_column(2, "Subject", pc.dictionary_encode(sleep.column("Subject")))
feather.write_feather(sleep, "tests/fixtures/formats/sleepstudy.feather", compression="uncompressed")

# mtime=0: the same bytes on every run.
with open("models/data/lme4/sleepstudy.csv", "rb") as source, open(
    "tests/fixtures/formats/sleepstudy.csv.gz", "wb"
) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as target:
    shutil.copyfileobj(source, target)

# A column type with no CSV counterpart (a date), which tandem refuses by name.
import datetime

pq.write_table(
    pa.table(
        {
            "y": [1.0, 2.0, 3.0],
            "visit": [datetime.date(2024, 1, d) for d in (1, 2, 3)],
        }
    ),
    "tests/fixtures/formats/dates.parquet",
)
