/**
 * Test stand-in for Railway's public GraphQL API (`POST /graphql/v2`): the operations the Railway compute
 * adapter sends, matched on `operationName` (and checked against the document's root field), with Railway's
 * shapes: `{data}` or `{data: null, errors: [{message, path, extensions}]}` at HTTP 200 ("Not Authorized"
 * for a wrong token, "… not found" for unknown ids), relay connections (edges/node/pageInfo, opaque
 * cursors), UUID ids. An unknown operation gets a GraphQL validation error (HTTP 400).
 * Every request goes to the same path, so besides the shared `faults` (random, by `POST /graphql/v2`) the
 * stand-in can fault one operation: `failOperation('VolumeCreate', 'lost')`. Here `lost` and `timeout` hang
 * (the handler cannot drop the socket): the client's timeout fires; for `lost` the work was done.
 */
import { randomUUID } from 'node:crypto';
import { type FaultKind, Inventory, type JsonResponse, startProviderServer } from './provider-http';

type Deployment = { id: string; serviceId: string; environmentId: string; status: string; createdAt: string };
type Service = {
  id: string;
  name: string;
  image: string | null;
  startCommand: string | null;
  region: string | null;
};
type VolumeInstance = { id: string; mountPath: string; serviceId: string; environmentId: string };
type Domain = {
  id: string;
  serviceId: string;
  environmentId: string;
  domain: string;
  targetPort: number | null;
};

export interface RailwayProject {
  id: string;
  name: string;
  workspaceId: string | null;
  /** Creation order: what the opaque pagination cursors encode. */
  seq: number;
  environments: Array<{ id: string; name: string }>;
  services: Array<Service & { limits: { vCPUs?: unknown; memoryGB?: unknown } | null }>;
  /** Service variables, by service id. */
  variables: Record<string, Record<string, string>>;
  volumes: Array<{ id: string; name: string; instance: VolumeInstance }>;
  domains: Domain[];
  /** `redeployOf`: the deployment a `deploymentRedeploy` started from. */
  deployments: Array<Deployment & { redeployOf: string | null }>;
}

class GqlError extends Error {}
type Vars = Record<string, unknown>;
const conn = <T>(nodes: T[]) => ({ edges: nodes.map((node) => ({ node })) });
const cursor = (seq: number) => Buffer.from(`project:${seq}`).toString('base64');
const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v)
    throw new GqlError(`Variable "${what}" of required type "String!" was not provided.`);
  return v;
};
const optional = (v: unknown) => (typeof v === 'string' ? v : null);

export interface RailwayStandinOptions {
  token?: string;
  deployStatus?: string;
  /**
   * A deployment starts (deploy or redeploy), with the service's variables: an end-to-end test starts the
   * "machine" here. Runs before the deployment is recorded, so a hook failure leaves no deployment behind.
   */
  onDeploy?: (project: RailwayProject, variables: Record<string, string>) => void | Promise<void>;
  /** A project is being deleted: the test stops its "machine" (before removal, so a failure is retried). */
  onDelete?: (project: RailwayProject) => void | Promise<void>;
}

export async function startRailwayStandin(opts: RailwayStandinOptions = {}) {
  const token = opts.token ?? 'railway-test-token';
  const projects = new Inventory<RailwayProject>();
  const operations: string[] = [];
  const opFaults: Array<{ op: string; kind: FaultKind; remaining: number }> = [];
  const injected: Array<{ op: string; kind: FaultKind }> = [];
  let seq = 0;

  const project = (id: unknown) => {
    const p = projects.items.get(str(id, 'projectId'));
    if (!p) throw new GqlError('Project not found');
    return p;
  };
  /** The service (and its project) named by `serviceId`, checked against `environmentId` when given. */
  const service = (v: Vars) => {
    const serviceId = str(v.serviceId, 'serviceId');
    for (const p of projects.items.values()) {
      const s = p.services.find((x) => x.id === serviceId);
      if (s && (v.environmentId === undefined || p.environments.some((e) => e.id === v.environmentId)))
        return { p, s, environmentId: optional(v.environmentId) ?? p.environments[0]!.id };
    }
    throw new GqlError('Service not found');
  };
  const deploy = async (
    p: RailwayProject,
    serviceId: string,
    environmentId: string,
    redeployOf: string | null,
  ) => {
    await opts.onDeploy?.(p, { ...p.variables[serviceId] });
    const status = opts.deployStatus ?? 'SUCCESS';
    const d = {
      id: randomUUID(),
      serviceId,
      environmentId,
      status,
      createdAt: new Date().toISOString(),
      redeployOf,
    };
    p.deployments.push(d);
    return d;
  };

  // Resolvers by operation name (the root field is the name with a lower-case initial); `i` is `$input`.
  const ops: Record<string, (v: Vars, i: Vars) => unknown | Promise<unknown>> = {
    Projects: (v) => {
      const after =
        typeof v.after === 'string' ? Number(Buffer.from(v.after, 'base64').toString().split(':')[1]) : 0;
      const all = projects
        .list()
        .filter((p) => (!v.workspaceId || p.workspaceId === v.workspaceId) && p.seq > after)
        .sort((a, b) => a.seq - b.seq);
      const page = all.slice(0, typeof v.first === 'number' ? v.first : 100);
      const [first, last] = [page[0], page.at(-1)];
      const edges = page.map((p) => ({ node: { id: p.id, name: p.name }, cursor: cursor(p.seq) }));
      const pageInfo = {
        hasNextPage: all.length > page.length,
        hasPreviousPage: after > 0,
        startCursor: first ? cursor(first.seq) : null,
        endCursor: last ? cursor(last.seq) : null,
      };
      return { projects: { edges, pageInfo } };
    },
    ProjectCreate: (_, i) => {
      const environments = [{ id: randomUUID(), name: optional(i.defaultEnvironmentName) ?? 'production' }];
      const p = projects.add({
        ...{ id: randomUUID(), name: optional(i.name) ?? `project-${seq + 1}`, seq: ++seq, environments },
        ...{
          workspaceId: optional(i.workspaceId),
          services: [],
          variables: {},
          volumes: [],
          domains: [],
          deployments: [],
        },
      });
      return { projectCreate: { id: p.id, name: p.name, environments: conn(p.environments) } };
    },
    Project: (v) => {
      const p = project(v.id);
      const volumes = p.volumes.map((x) => ({ id: x.id, name: x.name, volumeInstances: conn([x.instance]) }));
      const services = conn(p.services.map(({ id, name }) => ({ id, name })));
      return {
        project: {
          id: p.id,
          name: p.name,
          environments: conn(p.environments),
          services,
          volumes: conn(volumes),
        },
      };
    },
    ServiceCreate: (_, i) => {
      const p = project(i.projectId);
      const image = optional((i.source as Vars | undefined)?.image);
      const name = optional(i.name) ?? `service-${p.services.length + 1}`;
      const s = { id: randomUUID(), name, image, startCommand: null, region: null, limits: null };
      p.services.push(s);
      return { serviceCreate: { id: s.id, name: s.name } };
    },
    ServiceInstanceUpdate: (v, i) => {
      const { s } = service({ ...v, environmentId: str(v.environmentId, 'environmentId') });
      s.image = optional((i.source as Vars | undefined)?.image) ?? s.image;
      s.startCommand = optional(i.startCommand) ?? s.startCommand;
      s.region = optional(i.region) ?? s.region;
      return { serviceInstanceUpdate: true };
    },
    ServiceInstanceLimitsUpdate: (_, i) => {
      service({ ...i, environmentId: str(i.environmentId, 'input.environmentId') }).s.limits = {
        vCPUs: i.vCPUs,
        memoryGB: i.memoryGB,
      };
      return { serviceInstanceLimitsUpdate: true };
    },
    VariableCollectionUpsert: (_, i) => {
      const p = project(i.projectId);
      const { s } = service({ ...i, environmentId: str(i.environmentId, 'input.environmentId') });
      const vars = i.variables as Record<string, unknown> | undefined;
      if (!vars || typeof vars !== 'object' || Object.values(vars).some((x) => typeof x !== 'string'))
        throw new GqlError('Variable "$input" got invalid value at "input.variables"');
      p.variables[s.id] = { ...(i.replace ? {} : p.variables[s.id]), ...(vars as Record<string, string>) };
      return { variableCollectionUpsert: true };
    },
    VolumeCreate: (_, i) => {
      const p = project(i.projectId);
      const { s, environmentId } = service(i);
      // Railway allows one volume per service.
      if (p.volumes.some((x) => x.instance.serviceId === s.id))
        throw new GqlError('Service already has a volume');
      const instance = {
        id: randomUUID(),
        mountPath: str(i.mountPath, 'input.mountPath'),
        serviceId: s.id,
        environmentId,
      };
      const volume = { id: randomUUID(), name: `${s.name}-volume`, instance };
      p.volumes.push(volume);
      return { volumeCreate: { id: volume.id, name: volume.name } };
    },
    Domains: (v) => {
      const list = project(v.projectId).domains.filter(
        (d) => d.serviceId === v.serviceId && d.environmentId === v.environmentId,
      );
      return { domains: { serviceDomains: list, customDomains: [] } };
    },
    ServiceDomainCreate: (_, i) => {
      const { p, s, environmentId } = service({
        ...i,
        environmentId: str(i.environmentId, 'input.environmentId'),
      });
      const domain = `${s.name}-production-${randomUUID().slice(0, 4)}.up.railway.app`;
      const targetPort = typeof i.targetPort === 'number' ? i.targetPort : null;
      const d = { id: randomUUID(), serviceId: s.id, environmentId, domain, targetPort };
      p.domains.push(d);
      return { serviceDomainCreate: { id: d.id, domain: d.domain } };
    },
    ServiceInstance: (v) => {
      const { p, s, environmentId } = service({ ...v, environmentId: str(v.environmentId, 'environmentId') });
      const mine = p.deployments.filter((d) => d.serviceId === s.id && d.environmentId === environmentId);
      const latest = mine.at(-1);
      const latestDeployment = latest
        ? { id: latest.id, status: latest.status, createdAt: latest.createdAt }
        : null;
      const { startCommand, image } = s;
      return {
        serviceInstance: {
          id: randomUUID(),
          serviceId: s.id,
          startCommand,
          source: { image },
          latestDeployment,
        },
      };
    },
    ServiceInstanceDeployV2: async (v) => {
      const { p, s, environmentId } = service({ ...v, environmentId: str(v.environmentId, 'environmentId') });
      if (!s.image) throw new GqlError('Service has no source to deploy');
      return { serviceInstanceDeployV2: (await deploy(p, s.id, environmentId, null)).id };
    },
    DeploymentRedeploy: async (v) => {
      for (const p of projects.items.values()) {
        const old = p.deployments.find((d) => d.id === v.id);
        if (!old) continue;
        const d = await deploy(p, old.serviceId, old.environmentId, old.id);
        return { deploymentRedeploy: { id: d.id, status: d.status } };
      }
      throw new GqlError('Deployment not found');
    },
    ProjectDelete: async (v) => {
      const p = project(v.id);
      // Hook first: if it fails the project stays, and the caller's retry deletes it again.
      await opts.onDelete?.(p);
      projects.remove(p.id);
      return { projectDelete: true };
    },
  };

  const hang = () => new Promise<JsonResponse>(() => {});
  const error = (message: string, path: string[], code: string, status = 200): JsonResponse => ({
    status,
    body: {
      data: null,
      errors: [{ message, locations: [{ line: 2, column: 3 }], path, extensions: { code } }],
    },
  });

  const server = await startProviderServer(async (req) => {
    if (req.method !== 'POST' || req.path !== '/graphql/v2')
      return { status: 404, body: { message: 'Not Found' } };
    const body = (req.body ?? {}) as { query?: unknown; variables?: Vars; operationName?: unknown };
    const op = typeof body.operationName === 'string' ? body.operationName : '';
    const root = op.charAt(0).toLowerCase() + op.slice(1);
    const resolve = ops[op];
    // The document must be the operation it claims to be (a real server would execute the document).
    if (!resolve || typeof body.query !== 'string' || !body.query.includes(`${root}(`))
      return error(`Unknown operation named "${op}".`, [], 'GRAPHQL_VALIDATION_FAILED', 400);
    if (req.headers.authorization !== `Bearer ${token}`)
      return error('Not Authorized', [root], 'INTERNAL_SERVER_ERROR');
    const queued = opFaults.find((f) => f.op === op && f.remaining > 0);
    if (queued) {
      queued.remaining -= 1;
      injected.push({ op, kind: queued.kind });
      if (queued.kind === '5xx') return { status: 503, body: { message: 'Service Unavailable' } };
      if (queued.kind === '429')
        return { status: 429, headers: { 'retry-after': '1' }, body: { message: 'Rate limit exceeded' } };
      if (queued.kind === 'timeout') return hang();
    }
    operations.push(op);
    let out: JsonResponse;
    try {
      const vars = body.variables ?? {};
      out = { status: 200, body: { data: await resolve(vars, (vars.input ?? {}) as Vars) } };
    } catch (err) {
      if (!(err instanceof GqlError)) throw err;
      out = error(err.message, [root], 'INTERNAL_SERVER_ERROR');
    }
    return queued?.kind === 'lost' ? hang() : out;
  });

  return {
    ...server,
    token,
    inventory: projects,
    /** Operations handled (answered or lost), in order. */
    operations,
    /** Faults injected by `failOperation`. */
    injected,
    /** The next `count` requests for operation `op` get `kind`. */
    failOperation(op: string, kind: FaultKind, count = 1) {
      opFaults.push({ op, kind, remaining: count });
    },
  };
}

export type RailwayStandin = Awaited<ReturnType<typeof startRailwayStandin>>;
