import { Authenticated, REQUIRED_ROLES } from '../../src/modules/auth/auth.decorators.js';

class Routes {
  @Authenticated('admin')
  adminOnly(): void {}

  @Authenticated('client', 'worker')
  clientsAndWorkers(): void {}
}

describe('@Authenticated', () => {
  it('records exactly the roles it is given', () => {
    expect(Reflect.getMetadata(REQUIRED_ROLES, Routes.prototype.adminOnly)).toEqual(['admin']);
    expect(Reflect.getMetadata(REQUIRED_ROLES, Routes.prototype.clientsAndWorkers)).toEqual(['client', 'worker']);
  });

  it('cannot be written without roles (a compile error, checked by npm run typecheck)', () => {
    // @ts-expect-error: no roles is no longer a silent "admin only"; say @Authenticated('admin').
    const decorator = (): unknown => Authenticated();
    expect(typeof decorator).toBe('function');
  });
});
