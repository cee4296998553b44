/**
 * Railway compute: one Railway project per instance, named `convos-<pool>-<instanceId>`, holding one service
 * run from the runtime image, its variables, a volume at /data and a public `*.up.railway.app` domain.
 * Railway's public API is GraphQL (one POST endpoint, docs.railway.com/integrations/api). Every step looks up
 * what exists before creating, so an activity retry after a lost answer continues where the last attempt
 * stopped, without duplicates. Readiness is the workflow's job (`/pool/health`): create returns once a
 * deployment is triggered.
 */
import {
  ProviderConflictError,
  ProviderError,
  ProviderNotFoundError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../contracts/provider-errors';
import { HttpClient } from '../providers/http';
import { instanceIdFromName, resourceName, resourceNamePrefix } from '../providers/types';
import type { ComputeHandle, ComputeProvider, ComputeSpec } from './types';

export const RAILWAY_ENDPOINT = 'https://backboard.railway.com/graphql/v2';
/** The one service in each instance's project. */
export const RAILWAY_SERVICE_NAME = 'runtime';
export const RAILWAY_VOLUME_MOUNT = '/data';

export interface RailwayProviderOptions {
  /** Account or workspace token, sent as `Authorization: Bearer` (a project token cannot create projects). */
  token: string;
  /** Workspace that owns the projects; without it the token's personal projects are used. */
  workspaceId?: string;
  /** Runtime image, e.g. `ghcr.io/org/convos-runtime:1.2.3`. */
  image: string;
  startCommand?: string;
  limits?: { cpu: number; memoryGb: number };
  region?: string;
  endpoint?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Port the runtime listens on (its PORT) and the public domain routes to. */
  port?: number;
  /** Projects per page when listing (relay `first`). */
  pageSize?: number;
  /** Control-server URL of a service domain (default `https://<domain>`); tests map it to a stand-in. */
  urlForDomain?: (domain: string) => string;
}

/** Deployment statuses (docs: manage-deployments) during which a new deploy would only pile up. */
const IN_PROGRESS = new Set(['QUEUED', 'WAITING', 'INITIALIZING', 'BUILDING', 'DEPLOYING']);
/** Statuses with nothing running that `deploymentRedeploy` cannot start again: deploy afresh instead. */
const GONE = new Set(['REMOVED', 'SKIPPED']);
const FAILED = new Set(['FAILED', 'CRASHED']);
/** Statuses of a latest deployment that is running (SLEEPING: Railway's serverless sleep wakes on a request). */
const RUNNING = new Set(['SUCCESS', 'SLEEPING']);

interface GqlError {
  message?: string;
  extensions?: { code?: string };
}
interface GqlResponse<T> {
  data?: T | null;
  errors?: GqlError[];
}
interface Connection<T> {
  edges: Array<{ node: T }>;
  pageInfo?: { hasNextPage: boolean; endCursor: string | null };
}
interface ProjectDetail {
  id: string;
  name: string;
  environments: Connection<{ id: string; name: string }>;
  services: Connection<{ id: string; name: string }>;
  volumes: Connection<{
    id: string;
    volumeInstances: Connection<{
      id: string;
      mountPath: string;
      serviceId: string | null;
      environmentId: string;
    }>;
  }>;
}
interface Placement {
  projectId: string;
  environmentId: string;
  serviceId: string;
  domain: string;
}

const Q = {
  Projects: `query Projects($workspaceId: String, $first: Int, $after: String) {
  projects(workspaceId: $workspaceId, first: $first, after: $after) {
    edges { node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}`,
  ProjectCreate: `mutation ProjectCreate($input: ProjectCreateInput!) {
  projectCreate(input: $input) { id name }
}`,
  Project: `query Project($id: String!) {
  project(id: $id) {
    id name
    environments { edges { node { id name } } }
    services { edges { node { id name } } }
    volumes { edges { node { id volumeInstances { edges { node { id mountPath serviceId environmentId } } } } } }
  }
}`,
  ServiceCreate: `mutation ServiceCreate($input: ServiceCreateInput!) {
  serviceCreate(input: $input) { id name }
}`,
  ServiceInstanceUpdate: `mutation ServiceInstanceUpdate($serviceId: String!, $environmentId: String!, $input: ServiceInstanceUpdateInput!) {
  serviceInstanceUpdate(serviceId: $serviceId, environmentId: $environmentId, input: $input)
}`,
  ServiceInstanceLimitsUpdate: `mutation ServiceInstanceLimitsUpdate($input: ServiceInstanceLimitsUpdateInput!) {
  serviceInstanceLimitsUpdate(input: $input)
}`,
  VariableCollectionUpsert: `mutation VariableCollectionUpsert($input: VariableCollectionUpsertInput!) {
  variableCollectionUpsert(input: $input)
}`,
  VolumeCreate: `mutation VolumeCreate($input: VolumeCreateInput!) {
  volumeCreate(input: $input) { id name }
}`,
  Domains: `query Domains($projectId: String!, $environmentId: String!, $serviceId: String!) {
  domains(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) {
    serviceDomains { id domain }
  }
}`,
  ServiceDomainCreate: `mutation ServiceDomainCreate($input: ServiceDomainCreateInput!) {
  serviceDomainCreate(input: $input) { id domain }
}`,
  ServiceInstance: `query ServiceInstance($serviceId: String!, $environmentId: String!) {
  serviceInstance(serviceId: $serviceId, environmentId: $environmentId) {
    id
    latestDeployment { id status }
  }
}`,
  ServiceInstanceDeployV2: `mutation ServiceInstanceDeployV2($serviceId: String!, $environmentId: String!) {
  serviceInstanceDeployV2(serviceId: $serviceId, environmentId: $environmentId)
}`,
  DeploymentRedeploy: `mutation DeploymentRedeploy($id: String!) {
  deploymentRedeploy(id: $id) { id status }
}`,
  ProjectDelete: `mutation ProjectDelete($id: String!) {
  projectDelete(id: $id)
}`,
} as const;
type Operation = keyof typeof Q;

/** Replaces every secret value in `text`; values shorter than 6 characters are too common to matter. */
function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 6) out = out.split(s).join('[redacted]');
  return out;
}

/** The same error class with a redacted message naming the operation. */
function rewrap(err: ProviderError, op: Operation, secrets: readonly string[]): ProviderError {
  const message = `${redact(err.message, secrets)} (${op})`;
  const detail = err.detail === null ? null : redact(err.detail, secrets);
  if (err instanceof ProviderRateLimitedError) return new ProviderRateLimitedError(message, err.retryAfterMs);
  const Ctor = (
    [ProviderRejectedError, ProviderNotFoundError, ProviderConflictError, ProviderUnavailableError] as const
  ).find((C) => err instanceof C);
  return new (Ctor ?? ProviderUnavailableError)(message, err.status, detail);
}

/**
 * GraphQL errors arrive with HTTP 200. Railway says "Not Authorized" for a bad token or a resource the
 * token cannot see (its CLI matches on that text), "… not found" for missing ids; validation errors come
 * from the GraphQL layer. "Problem processing request" and anything unknown are treated as transient.
 */
function classify(op: Operation, errors: GqlError[], secrets: readonly string[]): ProviderError {
  const first = errors[0] ?? {};
  const detail = redact(String(first.message ?? 'unknown error'), secrets).slice(0, 200);
  const code = String(first.extensions?.code ?? '');
  const lower = detail.toLowerCase();
  const message = `railway ${op} failed: ${detail}`;
  if (/not authori[sz]ed|unauthori[sz]ed|unauthenticated|forbidden/.test(lower) || code === 'UNAUTHENTICATED')
    return new ProviderRejectedError(message, 200, detail);
  if (/rate limit|too many requests/.test(lower)) return new ProviderRateLimitedError(message, 1000);
  if (/not found|does not exist/.test(lower)) return new ProviderNotFoundError(message, 200, detail);
  if (
    code === 'GRAPHQL_VALIDATION_FAILED' ||
    code === 'BAD_USER_INPUT' ||
    /invalid value|cannot query field|unknown (argument|operation)|validation/.test(lower)
  )
    return new ProviderRejectedError(message, 200, detail);
  return new ProviderUnavailableError(message, 200, detail);
}

export class RailwayComputeProvider implements ComputeProvider {
  readonly name = 'railway';
  private readonly http: HttpClient;
  private readonly path: string;
  private readonly port: number;
  private readonly urlFor: (domain: string) => string;
  /**
   * Where each instance lives, learned when this process created, restarted or looked it up: later calls go
   * to its project by id instead of paging through every project of the workspace.
   */
  private readonly placements = new Map<string, Placement>();

  /** The configured image reference: pin a tag or digest per release, and a new one rolls the idle pool. */
  async runtimeVersion(): Promise<string | null> {
    return this.opts.image;
  }

  constructor(private readonly opts: RailwayProviderOptions) {
    if (!opts.token) throw new Error('railway: a token is required');
    if (!opts.image) throw new Error('railway: a runtime image is required');
    const url = new URL(opts.endpoint ?? RAILWAY_ENDPOINT);
    this.path = url.pathname;
    this.port = opts.port ?? 8080;
    this.urlFor = opts.urlForDomain ?? ((domain) => `https://${domain}`);
    this.http = new HttpClient({
      baseUrl: url.origin,
      provider: 'railway',
      headers: () => ({ authorization: `Bearer ${opts.token}` }),
      timeoutMs: opts.timeoutMs,
      fetch: opts.fetch,
    });
  }

  private async gql<T>(
    op: Operation,
    variables: Record<string, unknown>,
    secrets: string[] = [],
  ): Promise<T> {
    const hide = [this.opts.token, ...secrets];
    let res: GqlResponse<T> | null;
    try {
      res = await this.http.request<GqlResponse<T> | null>('POST', this.path, {
        body: { query: Q[op], variables, operationName: op },
      });
    } catch (err) {
      throw err instanceof ProviderError ? rewrap(err, op, hide) : err;
    }
    if (res?.errors?.length) throw classify(op, res.errors, hide);
    if (!res?.data) throw new ProviderUnavailableError(`railway ${op}: answer without data`, 200);
    return res.data;
  }

  /** Every project of ours (name starts with `prefix`), across all pages. */
  private async projectsNamed(
    prefix: string,
    secrets: string[] = [],
  ): Promise<Array<{ id: string; name: string }>> {
    const out: Array<{ id: string; name: string }> = [];
    let after: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const { projects } = await this.gql<{ projects: Connection<{ id: string; name: string }> }>(
        'Projects',
        { workspaceId: this.opts.workspaceId, first: this.opts.pageSize ?? 100, after },
        secrets,
      );
      for (const { node } of projects.edges) if (node.name.startsWith(prefix)) out.push(node);
      if (!projects.pageInfo?.hasNextPage || !projects.pageInfo.endCursor) break;
      after = projects.pageInfo.endCursor;
    }
    return out;
  }

  /** Projects named for the instance: the one this process knows, else a search of the workspace. */
  private async findProjects(instanceId: string, poolName: string, secrets: string[] = []) {
    const name = resourceName(poolName, instanceId);
    const known = this.placements.get(instanceId);
    if (known) return [{ id: known.projectId, name }];
    return (await this.projectsNamed(name, secrets)).filter((p) => p.name === name);
  }

  /**
   * The runtime's variables. PUBLIC_URL is the instance's own public domain, so the links it hands out (the
   * local chat page, callbacks) reach it from outside, not its loopback.
   */
  private variables(spec: ComputeSpec, domain: string): Record<string, string> {
    return {
      ...spec.env,
      PORT: String(this.port),
      HOST: '0.0.0.0',
      STATE_DIR: RAILWAY_VOLUME_MOUNT,
      PUBLIC_URL: `https://${domain}`,
    };
  }

  /** Adopt-or-create, one step at a time: project, service, settings, variables, volume, domain. */
  private async ensure(spec: ComputeSpec): Promise<Placement> {
    const name = resourceName(spec.poolName, spec.instanceId);
    // Errors may echo what was sent (a validation error quotes the input): no variable value reaches them.
    const secrets = Object.values(spec.env);
    const gql = <T>(op: Operation, vars: Record<string, unknown>) => this.gql<T>(op, vars, secrets);
    let projectId = (await this.findProjects(spec.instanceId, spec.poolName, secrets))[0]?.id;
    if (!projectId) {
      const { projectCreate } = await gql<{ projectCreate: { id: string } }>('ProjectCreate', {
        input: {
          name,
          description: `convos-agents instance ${spec.instanceId} (pool ${spec.poolName})`,
          ...(this.opts.workspaceId ? { workspaceId: this.opts.workspaceId } : {}),
        },
      });
      projectId = projectCreate.id;
    }
    const { project } = await gql<{ project: ProjectDetail }>('Project', { id: projectId });
    const envs = project.environments.edges.map((e) => e.node);
    // projectCreate makes one environment, `production` by default.
    const environmentId = (envs.find((e) => e.name === 'production') ?? envs[0])?.id;
    if (!environmentId)
      throw new ProviderUnavailableError(`railway project ${projectId} has no environment yet`, null);

    let serviceId = project.services.edges.find((e) => e.node.name === RAILWAY_SERVICE_NAME)?.node.id;
    if (!serviceId) {
      // Created without a source so nothing deploys before the settings, variables and volume are in place.
      const { serviceCreate } = await gql<{ serviceCreate: { id: string } }>('ServiceCreate', {
        input: { projectId, environmentId, name: RAILWAY_SERVICE_NAME },
      });
      serviceId = serviceCreate.id;
    }
    const at = { serviceId, environmentId };
    await gql('ServiceInstanceUpdate', {
      ...at,
      input: {
        source: { image: this.opts.image },
        ...(this.opts.startCommand ? { startCommand: this.opts.startCommand } : {}),
        ...(this.opts.region ? { region: this.opts.region } : {}),
      },
    });
    if (this.opts.limits) {
      await gql('ServiceInstanceLimitsUpdate', {
        input: { ...at, vCPUs: this.opts.limits.cpu, memoryGB: this.opts.limits.memoryGb },
      });
    }

    const hasVolume = project.volumes.edges.some((v) =>
      v.node.volumeInstances.edges.some((i) => i.node.serviceId === serviceId),
    );
    if (!hasVolume) {
      await gql('VolumeCreate', {
        input: {
          projectId,
          ...at,
          mountPath: RAILWAY_VOLUME_MOUNT,
          ...(this.opts.region ? { region: this.opts.region } : {}),
        },
      });
    }

    // The domain before the variables: the runtime's PUBLIC_URL is its domain.
    const { domains } = await gql<{ domains: { serviceDomains: Array<{ domain: string }> } }>('Domains', {
      projectId,
      ...at,
    });
    let domain = domains.serviceDomains[0]?.domain;
    if (!domain) {
      const { serviceDomainCreate } = await gql<{ serviceDomainCreate: { domain: string } }>(
        'ServiceDomainCreate',
        { input: { ...at, targetPort: this.port } },
      );
      domain = serviceDomainCreate.domain;
    }
    // skipDeploys: we deploy once, at the end, with everything in place.
    await gql('VariableCollectionUpsert', {
      input: { projectId, ...at, variables: this.variables(spec, domain), skipDeploys: true },
    });
    const placement = { projectId, environmentId, serviceId, domain };
    this.placements.set(spec.instanceId, placement);
    return placement;
  }

  private async latestDeployment(p: Pick<Placement, 'serviceId' | 'environmentId'>) {
    const { serviceInstance } = await this.gql<{
      serviceInstance: { latestDeployment: { id: string; status: string } | null } | null;
    }>('ServiceInstance', { serviceId: p.serviceId, environmentId: p.environmentId });
    return serviceInstance?.latestDeployment ?? null;
  }

  /**
   * create: deploy unless a deployment is already going or running (a retry adopts it).
   * restart: redeploy the latest (it picks up the re-upserted variables), unless one is in progress.
   */
  private async deploy(p: Placement, restart: boolean): Promise<void> {
    const latest = await this.latestDeployment(p);
    const at = { serviceId: p.serviceId, environmentId: p.environmentId };
    if (!latest || GONE.has(latest.status)) {
      await this.gql('ServiceInstanceDeployV2', at);
      return;
    }
    if (IN_PROGRESS.has(latest.status)) return;
    if (restart || FAILED.has(latest.status)) await this.gql('DeploymentRedeploy', { id: latest.id });
  }

  async create(spec: ComputeSpec): Promise<ComputeHandle> {
    const p = await this.ensure(spec);
    await this.deploy(p, false);
    return { ref: p.projectId, url: this.urlFor(p.domain) };
  }

  async restart(spec: ComputeSpec): Promise<ComputeHandle> {
    const p = await this.ensure(spec);
    await this.deploy(p, true);
    return { ref: p.projectId, url: this.urlFor(p.domain) };
  }

  /** Deletes every project carrying the instance's name (the project takes its service, volume and domain). */
  async destroy(instanceId: string, poolName: string): Promise<void> {
    for (const project of await this.findProjects(instanceId, poolName)) {
      try {
        await this.gql('ProjectDelete', { id: project.id });
      } catch (err) {
        if (!(err instanceof ProviderNotFoundError)) throw err;
      }
    }
    this.placements.delete(instanceId);
  }

  /**
   * From the latest deployment's status: running (SUCCESS, SLEEPING), not running (FAILED, CRASHED, REMOVED,
   * SKIPPED, no deployment, no project), or null while one is in progress or Railway cannot be asked.
   */
  async isRunning(instanceId: string, poolName: string): Promise<boolean | null> {
    let placement = this.placements.get(instanceId);
    if (!placement) {
      const [project] = await this.findProjects(instanceId, poolName);
      if (!project) return false;
      const { project: detail } = await this.gql<{ project: ProjectDetail }>('Project', { id: project.id });
      const envs = detail.environments.edges.map((e) => e.node);
      const environmentId = (envs.find((e) => e.name === 'production') ?? envs[0])?.id;
      const serviceId = detail.services.edges.find((e) => e.node.name === RAILWAY_SERVICE_NAME)?.node.id;
      if (!environmentId || !serviceId) return false;
      placement = { projectId: project.id, environmentId, serviceId, domain: '' };
    }
    let latest: { status: string } | null;
    try {
      latest = await this.latestDeployment(placement);
    } catch (err) {
      if (err instanceof ProviderNotFoundError) {
        this.placements.delete(instanceId);
        return false;
      }
      throw err;
    }
    if (!latest || FAILED.has(latest.status) || GONE.has(latest.status)) return false;
    if (RUNNING.has(latest.status)) return true;
    return null;
  }

  async list(poolName: string): Promise<string[]> {
    const ids = (await this.projectsNamed(resourceNamePrefix(poolName)))
      .map((p) => instanceIdFromName(poolName, p.name))
      .filter((id): id is string => id !== null);
    return [...new Set(ids)];
  }
}
