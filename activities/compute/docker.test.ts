import { describe, expect, it } from 'vitest';
import { DockerComputeProvider, defaultDockerSocket, toContainerUrl } from './docker';
import { ComputeRejectedError } from './types';

describe('the docker provider without a daemon', () => {
  it('rewrites loopback URLs to the host alias and leaves others alone', () => {
    expect(toContainerUrl('http://127.0.0.1:3001')).toBe('http://host.docker.internal:3001');
    expect(toContainerUrl('http://localhost:11434/v1')).toBe('http://host.docker.internal:11434/v1');
    expect(toContainerUrl('http://[::1]:1234/v1/')).toBe('http://host.docker.internal:1234/v1/');
    expect(toContainerUrl('http://127.1.2.3:8080/')).toBe('http://host.docker.internal:8080/');
    expect(toContainerUrl('https://pool.example/api')).toBe('https://pool.example/api');
    expect(toContainerUrl('http://10.0.0.5:3001')).toBe('http://10.0.0.5:3001');
    expect(toContainerUrl('not a url')).toBe('not a url');
  });

  it('names containers and volumes after pool and instance, and refuses names Docker cannot take', () => {
    const docker = new DockerComputeProvider({
      image: 'x',
      memoryMb: 512,
      cpus: 1,
      socketPath: '/nonexistent',
    });
    expect(docker.containerName('a1b2', 'local')).toBe('convos-local-a1b2');
    expect(docker.volumeName('a1b2', 'local')).toBe('convos-local-a1b2-data');
    expect(() => docker.containerName('a1b2', 'bad/pool')).toThrow(ComputeRejectedError);
  });

  it('says the daemon is unreachable, and cannot tell whether an instance runs', async () => {
    const docker = new DockerComputeProvider({
      image: 'x',
      memoryMb: 512,
      cpus: 1,
      socketPath: '/nonexistent',
    });
    await expect(docker.list('local')).rejects.toThrow(/daemon is not reachable at \/nonexistent/);
    expect(await docker.isRunning('a1b2', 'local')).toBeNull();
  });

  it('finds the socket in DOCKER_HOST', () => {
    expect(defaultDockerSocket({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toBe(
      '/run/user/1000/docker.sock',
    );
    expect(defaultDockerSocket({})).toBe('/var/run/docker.sock');
  });
});
