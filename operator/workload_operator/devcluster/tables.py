"""The Tables `kubectl get` asks the API server for, as the real kube-apiserver builds them.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;
g=meta.k8s.io,application/json`` and prints the server's columns as they come. A custom resource's columns are
its CRD's ``additionalPrinterColumns`` (JSONPath into the object; just Age when it has none), after Name;
a built-in has the columns of its own printer (here: pods and events; the rest have the server's default,
Name and Created At). Each row carries the object's metadata (PartialObjectMetadata) unless
``?includeObject=`` says None or Object. On a watch, only the first event's Table has the column definitions.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

JsonDict = dict[str, Any]

TABLE_GROUP = 'meta.k8s.io'
TABLE_VERSIONS = ('v1', 'v1beta1')
_JSON_KINDS = frozenset({'application/json', 'application/*', '*/*'})
_INCLUDE = ('None', 'Metadata', 'Object')
_NAME_DESCRIPTION = ('Name must be unique within a namespace. Is required when creating resources, although some '
                     'resources may allow a client to request the generation of an appropriate name automatically.')


class NotAcceptable(Exception):
    """The client accepts nothing the server can send (406), or asked for a Table wrongly (400)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a resource's Table: its definition and how a cell is taken from an object."""
    name: str
    type: str  # integer, number, string, boolean, date
    cell: Callable[[JsonDict], Any]
    priority: int = 0  # > 0: shown only by `kubectl get -o wide`
    format: str = ''
    description: str = ''

    def definition(self) -> JsonDict:
        return {'name': self.name, 'type': self.type, 'format': self.format, 'description': self.description,
                'priority': self.priority}


# ------------------------------------------------------------------ cells

def human_duration(seconds: float) -> str:
    """How kubectl and the server's printers show an age (apimachinery's HumanDuration): 45s, 3m20s, 5h, 2d3h."""
    whole = int(seconds)
    if whole < -1:
        return '<invalid>'
    if whole < 2 * 60:
        return f'{max(whole, 0)}s'
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if minutes < 10:
        return f'{minutes}m{whole % 60}s' if whole % 60 else f'{minutes}m'
    if minutes < 3 * 60:
        return f'{minutes}m'
    if hours < 8:
        return f'{hours}h{minutes % 60}m' if minutes % 60 else f'{hours}h'
    if hours < 48:
        return f'{hours}h'
    if hours < 8 * 24:
        return f'{days}d{hours % 24}h' if hours % 24 else f'{days}d'
    if days < 2 * 365:
        return f'{days}d'
    if days < 8 * 365:
        return f'{days // 365}y{days % 365}d' if days % 365 else f'{days // 365}y'
    return f'{days // 365}y'


def age(timestamp: Any, now: datetime.datetime | None = None) -> str | None:
    """A timestamp (RFC 3339) as the time since then; None when there is none."""
    if not timestamp or not isinstance(timestamp, str):
        return None
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace('Z', '+00:00'))
    except ValueError:
        return '<invalid>'
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration((now - then).total_seconds())


_PATH_STEP = re.compile(r"""\.(?P<key>[^.\[\]'"]+)|\[(?P<index>\d+)\]|\[(?P<quote>['"])(?P<quoted>.*?)(?P=quote)\]""")


def json_path(path: str) -> Callable[[JsonDict], Any]:
    """The simple JSONPath of a CRD's printer column (.status.state, .spec.items[0], .metadata.labels['a/b'])."""
    steps: list[str | int] = []
    position = 0
    text = path.strip().removeprefix('{').removesuffix('}')
    while position < len(text):
        m = _PATH_STEP.match(text, position)
        if m is None:
            raise ValueError(f'unsupported JSONPath in a printer column: {path!r}')
        steps.append(int(m['index']) if m['index'] is not None else m['key'] or m['quoted'])
        position = m.end()

    def find(obj: JsonDict) -> Any:
        found: Any = obj
        for step in steps:
            if isinstance(step, int):
                found = found[step] if isinstance(found, list) and step < len(found) else None
            else:
                found = found.get(step) if isinstance(found, dict) else None
            if found is None:
                return None
        return found
    return find


def typed_cell(column_type: str, value: Any) -> Any:
    """A JSONPath result as a cell of the column's type (the CRD table convertor's rules); None when absent."""
    if value is None:
        return None
    if column_type == 'date':
        return age(value) if isinstance(value, str) else None
    if column_type == 'integer':
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column_type == 'number':
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column_type == 'boolean':
        return value if isinstance(value, bool) else None
    if isinstance(value, str):  # 'string' (and unknown types): any value, as JSONPath prints it
        return value
    return json.dumps(value, separators=(',', ':')) if isinstance(value, dict | list) else json.dumps(value)


def printer_columns(crd_columns: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    """A CRD version's additionalPrinterColumns as a Table's columns: Name first, then each, or Age if none."""
    columns = crd_columns or [{'name': 'Age', 'type': 'date', 'jsonPath': '.metadata.creationTimestamp'}]

    def column(spec: Mapping[str, Any]) -> Column:
        find, column_type = json_path(spec['jsonPath']), spec['type']
        return Column(spec['name'], column_type, lambda obj: typed_cell(column_type, find(obj)),
                      priority=int(spec.get('priority') or 0), format=spec.get('format', ''),
                      description=spec.get('description', ''))
    return (NAME, *(column(spec) for spec in columns))


NAME = Column('Name', 'string', lambda obj: obj['metadata']['name'], format='name', description=_NAME_DESCRIPTION)
CREATED_AT = Column('Created At', 'date', lambda obj: obj['metadata'].get('creationTimestamp'),
                    description='CreationTimestamp is a timestamp representing the server time when this object '
                                'was created.')
DEFAULT_COLUMNS = (NAME, CREATED_AT)  # the server's default for a resource without a printer of its own
_AGE = Column('Age', 'string', lambda obj: age(obj['metadata'].get('creationTimestamp')))


def _pod_status(pod: JsonDict) -> str:
    """The STATUS of `kubectl get pods`, simplified: a container's waiting or termination reason, else the phase."""
    status = pod.get('status') or {}
    shown = status.get('reason') or status.get('phase') or 'Unknown'
    for container in status.get('containerStatuses') or []:
        state = container.get('state') or {}
        if (waiting := state.get('waiting')) and waiting.get('reason'):
            shown = waiting['reason']
        elif (ended := state.get('terminated')) is not None:
            shown = ended.get('reason') or (f'Signal:{ended["signal"]}' if ended.get('signal')
                                            else f'ExitCode:{ended.get("exitCode", 0)}')
    return 'Terminating' if pod['metadata'].get('deletionTimestamp') else shown


def _pod_ready(pod: JsonDict) -> str:
    statuses = (pod.get('status') or {}).get('containerStatuses') or []
    containers = (pod.get('spec') or {}).get('containers') or []
    return f'{sum(1 for c in statuses if c.get("ready"))}/{len(containers)}'


def _restarts(pod: JsonDict) -> str:
    return str(sum(int(c.get('restartCount') or 0) for c in (pod.get('status') or {}).get('containerStatuses') or []))


POD_COLUMNS = (
    NAME,
    Column('Ready', 'string', _pod_ready, description='The aggregate readiness state of this pod for accepting traffic.'),
    Column('Status', 'string', _pod_status, description='The aggregate status of the containers in this pod.'),
    Column('Restarts', 'string', _restarts, description='The number of times the containers in this pod have been '
                                                        'restarted.'),
    _AGE,
    Column('IP', 'string', lambda pod: (pod.get('status') or {}).get('podIP') or '<none>', priority=1),
    Column('Node', 'string', lambda pod: (pod.get('spec') or {}).get('nodeName') or '<none>', priority=1),
)


def _last_seen(event: JsonDict) -> str | None:
    return age(event.get('lastTimestamp') or event.get('eventTime') or event.get('firstTimestamp')
               or event['metadata'].get('creationTimestamp'))


def _involved(event: JsonDict) -> str:
    involved = event.get('involvedObject') or {}
    return f'{str(involved.get("kind", "")).lower()}/{involved.get("name", "")}'


EVENT_COLUMNS = (
    Column('Last Seen', 'string', _last_seen),
    Column('Type', 'string', lambda event: event.get('type', '')),
    Column('Reason', 'string', lambda event: event.get('reason', '')),
    Column('Object', 'string', _involved),
    Column('Message', 'string', lambda event: event.get('message', '')),
    Column('Count', 'integer', lambda event: event.get('count'), priority=1),
    Column('Name', 'string', lambda event: event['metadata']['name'], priority=1),
)


# ------------------------------------------------------------------ the request and the Table

@dataclasses.dataclass
class TableRequest:
    """A Table asked for by the Accept header (in meta.k8s.io `version`), and what each row carries."""
    version: str
    include: str = 'Metadata'  # ?includeObject=: None, Metadata (PartialObjectMetadata) or Object
    headers: bool = True  # the column definitions: on a watch, the first event only

    @property
    def content_type(self) -> str:
        return f'application/json;as=Table;v={self.version};g={TABLE_GROUP}'

    @classmethod
    def negotiate(cls, accept: str, params: Mapping[str, str]) -> TableRequest | None:
        """The first media type of the Accept header the server serves: a Table (this), plain JSON (None).

        Other conversions (as=PartialObjectMetadata, ...) and other encodings (protobuf, YAML) are not
        served here and are skipped; nothing left at all is a 406, as a real server answers."""
        if not accept.strip():
            return None
        for clause in accept.split(','):
            media, *parameters = [part.strip() for part in clause.split(';')]
            options = dict(part.split('=', 1) for part in parameters if '=' in part)
            if media.lower() not in _JSON_KINDS:
                continue
            if 'as' not in options:
                return None
            if options['as'] == 'Table' and options.get('g') == TABLE_GROUP and options.get('v') in TABLE_VERSIONS:
                include = params.get('includeObject') or 'Metadata'
                if include not in _INCLUDE:
                    raise NotAcceptable(400, f'unrecognized includeObject value: "{include}"')
                return cls(options['v'], include)
        raise NotAcceptable(406, 'only the following media types are accepted: application/json, '
                                 f'application/json;as=Table;v=v1;g={TABLE_GROUP}')

    def render(self, columns: Sequence[Column], objects: Sequence[JsonDict], metadata: JsonDict) -> JsonDict:
        definitions = [column.definition() for column in columns] if self.headers else None
        return {'kind': 'Table', 'apiVersion': f'{TABLE_GROUP}/{self.version}', 'metadata': metadata,
                'columnDefinitions': definitions, 'rows': [self._row(columns, obj) for obj in objects]}

    def _row(self, columns: Sequence[Column], obj: JsonDict) -> JsonDict:
        row: JsonDict = {'cells': [column.cell(obj) for column in columns]}
        if self.include == 'Object':
            row['object'] = obj
        elif self.include == 'Metadata':
            row['object'] = {'kind': 'PartialObjectMetadata', 'apiVersion': f'{TABLE_GROUP}/{self.version}',
                             'metadata': obj['metadata']}
        return row
