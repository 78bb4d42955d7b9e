"""The cohort file: one HDF5 file per run, in the netCDF-4 layout (readable by xarray), written
chunk by chunk so that a run can be resumed, and never left damaged by a killed process.
Its modules import no JAX (numpy and h5py only).

Life cycle: :func:`create` pre-allocates everything and marks the file incomplete (atomically);
:func:`write_chunk` fills one chunk of patients and marks it done; :func:`finalize` marks the
file complete; :func:`open_cohort` reads it back for reports. Every problem with a file is a
:class:`StoreError` with a one-line message naming the path.

Crash safety: every change to an existing file (:func:`write_chunk`, :func:`finalize`) is one
all-or-nothing write session with an undo journal ``<path>.journal``; a process killed at any
moment leaves the file as it was before the session or after it, and the next open undoes a
killed session (:func:`recover`).

Modules:
    schema: the layout (:class:`CohortLayout`, :data:`FORMAT`), its checks, :func:`create`.
    journal: the undo journal, locking, :func:`recover`, the write session.
    writer: :func:`write_chunk`, :func:`finalize`.
    background: :class:`BackgroundWriter`, chunks written while the next one is computed.
    reader: :func:`open_cohort` / :class:`Cohort`, :func:`chunks_done`, :func:`read_attrs`,
        :func:`is_complete`.
    replicates: the parameter-replicate axis (:class:`Replicates`) of ``popsim run
        --uncertainty`` files.
    shards: one shard file per process, stitched by virtual datasets (:func:`stitch`).
    errors: :class:`StoreError`.
"""

from .background import BackgroundWriter as BackgroundWriter
from .errors import StoreError as StoreError
from .journal import JOURNAL_SUFFIX as JOURNAL_SUFFIX
from .journal import _UndoFile as _UndoFile  # wrapped by tests/test_kill.py's driver
from .journal import journal_path as journal_path
from .journal import recover as recover
from .reader import Cohort as Cohort
from .reader import chunks_done as chunks_done
from .reader import is_complete as is_complete
from .reader import open_cohort as open_cohort
from .reader import read_attrs as read_attrs
from .replicates import Replicates as Replicates
from .schema import COHORT_SUFFIXES as COHORT_SUFFIXES
from .schema import FORMAT as FORMAT
from .schema import CohortLayout as CohortLayout
from .schema import create as create
from .shards import shard_path as shard_path
from .shards import stitch as stitch
from .writer import finalize as finalize
from .writer import write_chunk as write_chunk
